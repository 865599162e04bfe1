import GatehouseCore
import GatehouseChecks
import GatehouseIdentity

/// A credential directory with no entries, for validating configurations without a store.
struct OfflineDirectory: CredentialDirectory {
    func key(id: String) -> KeyRecord? { nil }
    func consumer(id: String) -> ConsumerRecord? { nil }
    var isAvailable: Bool { false }
}
