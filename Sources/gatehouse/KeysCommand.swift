import GatehouseChecks
import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseStore
import GatehouseIdentity
import GatehouseControl

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage API keys. A key is shown once, when created; the store keeps only its hash.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key for a consumer and print it once.")
        @Option(help: "The consumer the key belongs to.") var consumer: String
        @Option(help: "Lifetime, e.g. 30d, 12h (default: no expiry).") var expires: String?
        @Flag(help: "Print only the key (for scripts).") var quiet = false
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            var expiresAt: Double?
            if let expires {
                guard let d = TimeText.parseDuration(expires), d > 0 else {
                    throw ValidationError("--expires \"\(expires)\" is not a duration (e.g. 30d, 12h)")
                }
                expiresAt = Date().timeIntervalSince1970 + d
            }
            do {
                let created = try storeOptions.access().createKey(application: consumer, expiresAt: expiresAt)
                let (key, record) = (created.key, created.info)
                if quiet {
                    print(key)
                } else {
                    print("key id:   \(record.id)")
                    print("consumer: \(consumer)")
                    print("expires:  \(expiresAt.map(TimeText.iso) ?? "never")")
                    print("key:      \(key)")
                    print("")
                    print("This is the only time the key is shown; store it now. Logs and responses name it by its id, \(record.id).")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys by id (never the keys themselves).")
        @Option(help: "Only this consumer's keys.") var consumer: String?
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            let now = Date().timeIntervalSince1970
            let keys = try storeOptions.access().keys(application: consumer)
            for k in keys.sorted(by: { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }) {
                var state = "active"
                if let r = k.revokedAt {
                    state = "revoked \(TimeText.iso(r))"
                } else if let e = k.expiresAt, e <= now {
                    state = "expired \(TimeText.iso(e))"
                }
                print(
                    "\(k.id)  consumer=\(k.application)  created=\(TimeText.iso(k.createdAt))  expires=\(k.expiresAt.map(TimeText.iso) ?? "never")  \(state)"
                )
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id; a running gateway refuses it within about a second.")
        @Argument(help: "Key id.") var keyID: String
        @OptionGroup var storeOptions: StoreOptions
        func run() throws {
            _ = try storeOptions.access().revokeKey(id: keyID)
            print("revoked key \(keyID)")
        }
    }
}
