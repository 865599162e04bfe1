import ServiceLifecycle
import UnixSignals

/// Runs an action for each SIGHUP until graceful shutdown: the gateway's reload.
///
/// The signal is trapped when the value is made (`init` waits for the handler's registration), so
/// a SIGHUP that arrives before the group runs this service is queued, never left to the default
/// action (which ends the process).
public struct HangupService: Service, CustomStringConvertible {
    let signals: UnixSignalsSequence
    let onHangup: @Sendable () async -> Void

    public init(onHangup: @escaping @Sendable () async -> Void) async {
        signals = await UnixSignalsSequence(trapping: .sighup)
        self.onHangup = onHangup
    }

    public var description: String { "HangupService" }

    public func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            await onHangup()
        }
    }
}
