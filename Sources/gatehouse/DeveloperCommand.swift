import ArgumentParser
import Foundation
import GatehouseControl
import GatehouseCore

/// `gatehouse developer …`: the developer portal's accounts, each a developer of one application.
struct DeveloperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "developer", abstract: "Manage developer accounts of the portal (/portal/), one application each.",
        subcommands: [Create.self, List.self, Disable.self, Enable.self, Delete.self])

    static func show(_ d: Developer) -> String {
        TerminalSafe.line(
            "\(d.name)  id=\(d.id)  application=\(d.application)  status=\(d.status)\(d.tenant.map { "  tenant=\($0)" } ?? "")")
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a developer account for an application.",
            discussion:
                "The password is read from the environment variable GATEHOUSE_DEVELOPER_PASSWORD or, without it, from standard input (first line), so it stays out of shell history and process lists; it is stored as a bcrypt hash (8 characters to 72 bytes)."
        )
        @Argument(help: "The developer's name or e-mail address (letters, digits, - _ . @).") var name: String
        @Option(help: "The application (consumer) name or id the developer works on.") var application: String
        @Option(help: "bcrypt cost (work factor), 4...31.") var cost: UInt8 = 12
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            guard (4...31).contains(cost) else { throw ValidationError("--cost \(cost) is out of range (4...31)") }
            let password: String
            if let p = ProcessInfo.processInfo.environment["GATEHOUSE_DEVELOPER_PASSWORD"], !p.isEmpty {
                password = p
            } else if let line = readLine(strippingNewline: true), !line.isEmpty {
                password = line
            } else {
                throw ValidationError(
                    "no password: set GATEHOUSE_DEVELOPER_PASSWORD or pipe it in, e.g. printf '%s' \"$PW\" | gatehouse developer create \(name) --application APP"
                )
            }
            let d = try storeOptions.access().createDeveloper(name: name, application: application, password: password, cost: cost)
            print("created developer \(show(d))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List developer accounts.")
        @Option(help: "Only this application's developers.") var application: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            for d in try storeOptions.access().developers(application: application) { print(show(d)) }
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a developer account: it cannot sign in, and its open portal sessions stop working.")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { print("disabled developer \(show(try storeOptions.access().setDeveloperStatus(name, status: "disabled")))") }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-enable a disabled developer account.")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { print("enabled developer \(show(try storeOptions.access().setDeveloperStatus(name, status: "active")))") }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a developer account (the application, its keys and subscriptions stay).")
        @Argument var name: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws { print("deleted developer \(show(try storeOptions.access().deleteDeveloper(name)))") }
    }
}
