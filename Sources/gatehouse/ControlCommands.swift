import ArgumentParser
import Foundation
import GatehouseChecks
import GatehouseControl
import GatehouseCore
import GatehouseStore

/// `gatehouse tenants …`: teams that own applications and services.
struct TenantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Manage tenants (teams that own applications and services).",
        subcommands: [Create.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant.")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let t = try storeOptions.access().createTenant(name: name)
            print("created tenant \(t.name) (id \(t.id))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for t in try storeOptions.access().tenants() { print("\(t.name)  id=\(t.id)") }
        }
    }
}

/// `gatehouse services …`: named groups of routes that applications subscribe to.
struct ServicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services", abstract: "Manage services (named groups of routes that applications subscribe to).",
        subcommands: [Create.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a service.")
        @Argument var name: String
        @Option(help: "Owner tenant (its operators approve subscriptions).") var tenant: String?
        @Option(help: "auto or manual.") var approval = "manual"
        @Option(help: "Route names or path prefixes, comma-separated.") var routes: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let s = try storeOptions.access().createService(name: name, tenant: tenant, approval: approval, routes: split(routes))
            print("created service \(s.name) (id \(s.id), approval \(s.approval))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List services.")
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for s in try storeOptions.access().services() {
                print(
                    "\(s.name)  id=\(s.id)  approval=\(s.approval)\(s.tenant.map { "  tenant=\($0)" } ?? "")\(s.routes.isEmpty ? "" : "  routes=\(s.routes.joined(separator: ","))")"
                )
            }
        }
    }
}

/// `gatehouse subscriptions …`: applications' subscriptions to services, and their approval.
struct SubscriptionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscriptions",
        abstract: "Apply for, decide on and list subscriptions (pending → approved | rejected | cancelled, approved → revoked | expired).",
        subcommands: [Apply.self, Approve.self, Reject.self, Cancel.self, Revoke.self, List.self, Show.self])

    static func show(_ s: Subscription) {
        var line = "\(s.id)  application=\(s.application)  service=\(s.service)  state=\(s.state)"
        if let a = s.actor { line += "  by=\(a)" }
        if let e = s.expiresAt { line += "  expires=\(TimeText.iso(e))" }
        if let o = s.opinion { line += "  opinion=\"\(o)\"" }
        print(TerminalSafe.line(line))
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply for an application's subscription to a service.")
        @Option(help: "The application (consumer) name or id.") var application: String
        @Option(help: "The service name or id.") var service: String
        @Option(help: "Why the application needs the service.") var reason: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            show(try storeOptions.access().apply(application: application, service: service, reason: reason))
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a pending subscription.")
        @Argument var id: String
        @Option(help: "The approver's opinion.") var opinion: String?
        @Option(help: "Lifetime of the approval, e.g. 90d (default: no expiry).") var expires: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            var expiresAt: Double?
            if let expires {
                guard let d = TimeText.parseDuration(expires), d > 0 else {
                    throw ValidationError("--expires \"\(expires)\" is not a duration")
                }
                expiresAt = Date().timeIntervalSince1970 + d
            }
            show(try storeOptions.access().approve(id, opinion: opinion, expiresAt: expiresAt))
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a pending subscription.")
        @Argument var id: String
        @Option(help: "The approver's opinion (shown to the caller).") var opinion: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { show(try storeOptions.access().reject(id, opinion: opinion)) }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a pending application.")
        @Argument var id: String
        @Option(help: "Why.") var reason: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { show(try storeOptions.access().cancel(id, reason: reason)) }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an approved subscription.")
        @Argument var id: String
        @Option(help: "The approver's opinion (shown to the caller).") var opinion: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { show(try storeOptions.access().revoke(id, opinion: opinion)) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List subscriptions.")
        @Option(help: "Only this state.") var state: String?
        @Option(help: "Only this application.") var application: String?
        @Option(help: "Only this service.") var service: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for s in try storeOptions.access().subscriptions(state: state, application: application, service: service) { show(s) }
        }
    }
}

/// `gatehouse admins …`: admin users of the admin API and their tokens.
struct AdminsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admins", abstract: "Manage admin users of the admin API (/admin/v1) and their tokens.",
        subcommands: [Create.self, List.self, Token.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an admin user.",
            discussion: "With --password-stdin, the password is read from standard input (first line) and stored as a bcrypt hash.")
        @Argument var name: String
        @Option(help: "owner, admin, operator or viewer.") var role: String
        @Option(help: "Scope the user to one tenant.") var tenant: String?
        @Flag(help: "Read a password for Basic authentication from standard input.") var passwordStdin = false
        @Option(help: "bcrypt cost (work factor), 4...31.") var cost: UInt8 = 12
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            guard let role = AdminRole(rawValue: role) else {
                throw ValidationError("--role \(role) is not one of owner, admin, operator, viewer")
            }
            guard (4...31).contains(cost) else { throw ValidationError("--cost \(cost) is out of range (4...31)") }
            var password: String?
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("no password on standard input")
                }
                password = line
            }
            let u = try storeOptions.access().createAdminUser(name: name, role: role, tenant: tenant, password: password, cost: cost)
            print("created admin user \(u.name) (id \(u.id), role \(u.role.rawValue)\(u.tenant.map { ", tenant \($0)" } ?? ""))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List admin users.")
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for u in try storeOptions.access().adminUsers() {
                print("\(u.name)  id=\(u.id)  role=\(u.role.rawValue)\(u.tenant.map { "  tenant=\($0)" } ?? "")")
            }
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for an admin user and print it once.")
        @Argument var name: String
        @Flag(help: "Print only the token (for scripts).") var quiet = false
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let t = try storeOptions.access().createAdminToken(user: name)
            if quiet {
                print(t.token)
            } else {
                print("token id: \(t.info.id)")
                print("token:    \(t.token)")
                print("")
                print("This is the only time the token is shown; the store keeps only its hash. Send it as `Authorization: Bearer …`.")
            }
        }
    }
}

extension SubscriptionsCommand {
    /// `gatehouse subscriptions show ID`: one subscription with every transition.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a subscription and its history.")
        @Argument var id: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let s = try storeOptions.access().subscription(id)
            SubscriptionsCommand.show(s)
            for e in s.history ?? [] {
                var line = "  \(TimeText.iso(e.time))  \(e.from ?? "(none)") → \(e.to)  by \(e.actor)"
                if let r = e.reason { line += "  reason=\"\(r)\"" }
                if let o = e.opinion { line += "  opinion=\"\(o)\"" }
                if let a = e.auditEntry { line += "  audit=\(a)" }
                print(TerminalSafe.line(line))
            }
        }
    }
}
