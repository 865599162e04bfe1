import GatehouseChecks
import GatehouseCore
import ArgumentParser
import GatehouseStore
import GatehouseIdentity
import GatehouseControl

struct ConsumersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumers",
        abstract: "Manage API consumers.",
        subcommands: [Create.self, List.self, Suspend.self, Activate.self, Grant.self, SetPassword.self, MapJWT.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a consumer.")
        @Argument(help: "Consumer name (letters, digits, - _ . @).") var name: String
        @Option(help: "Tenant the consumer belongs to.") var tenant: String?
        @Option(help: "Roles, comma-separated.") var roles: String?
        @Option(help: "Scopes granted to the consumer's API keys, comma-separated.") var scopes: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let c = try storeOptions.access().createApplication(name: name, tenant: tenant, roles: split(roles), scopes: split(scopes))
            print("created consumer \(c.name) (id \(c.id))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List consumers.")
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for c in try storeOptions.access().applications() {
                var line = "\(c.name)  id=\(c.id)  status=\(c.status)"
                if let t = c.tenant { line += "  tenant=\(t)" }
                if !c.roles.isEmpty { line += "  roles=\(c.roles.joined(separator: ","))" }
                if !c.scopes.isEmpty { line += "  scopes=\(c.scopes.joined(separator: ","))" }
                print(line)
            }
        }
    }

    struct Suspend: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a consumer: its keys are refused with consumer_suspended.")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            _ = try storeOptions.access().updateApplication(name, status: "suspended", roles: nil, scopes: nil, tenant: nil)
            print("suspended consumer \(name)")
        }
    }

    struct Activate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reinstate a suspended consumer.")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            _ = try storeOptions.access().updateApplication(name, status: "active", roles: nil, scopes: nil, tenant: nil)
            print("activated consumer \(name)")
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a consumer's roles, scopes or tenant.")
        @Argument var name: String
        @Option(help: "Roles, comma-separated (replaces).") var roles: String?
        @Option(help: "Scopes, comma-separated (replaces).") var scopes: String?
        @Option(help: "Tenant.") var tenant: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            _ = try storeOptions.access().updateApplication(
                name, status: nil, roles: roles.map { split($0) }, scopes: scopes.map { split($0) }, tenant: tenant)
            print("updated consumer \(name)")
        }
    }
}

extension ConsumersCommand {
    struct SetPassword: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set a consumer's password for basic authentication (stored as a bcrypt hash).",
            discussion:
                "The password is read from standard input (first line) so it stays out of shell history and process lists; --clear removes it."
        )
        @Argument var name: String
        @Flag(help: "Remove the password: basic authentication for this consumer stops working.") var clear = false
        @Option(help: "bcrypt cost (work factor), 4...31.") var cost: UInt8 = 12
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            guard (4...31).contains(cost) else { throw ValidationError("--cost \(cost) is out of range (4...31)") }
            let access = try storeOptions.access()
            var password: String?
            if !clear {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError(
                        "no password on standard input (pipe it in, e.g. printf '%s' \"$PW\" | gatehouse consumers set-password \(name))")
                }
                password = line
            }
            try access.setApplicationPassword(name, password: password, cost: cost)
            print(clear ? "cleared the password of consumer \(name)" : "set the password of consumer \(name)")
        }
    }
}

extension ConsumersCommand {
    /// `gatehouse consumers map-jwt NAME --issuer ISS --subject SUB [--remove]`.
    struct MapJWT: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "map-jwt",
            abstract: "Let a JWT's issuer and subject act as this consumer (application) for subscriptions, or with --remove stop it.")
        @Argument var name: String
        @Option(help: "The token's iss.") var issuer: String
        @Option(help: "The token's sub.") var subject: String
        @Flag(help: "Remove the mapping.") var remove = false
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let access = try storeOptions.access()
            if remove {
                try access.removeJWTSubject(application: name, issuer: issuer, subject: subject)
                print(TerminalSafe.line("removed: tokens of \(issuer) for \(subject) no longer act as consumer \(name)"))
            } else {
                _ = try access.addJWTSubject(application: name, issuer: issuer, subject: subject)
                print(TerminalSafe.line("tokens of \(issuer) for \(subject) now act as consumer \(name) for subscriptions"))
            }
        }
    }
}

func split(_ s: String?) -> [String] {
    (s ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
}
