import Hummingbird

/// What the browser interfaces need of the listener's request context: the client's address
/// (sign-in limits, the audit log's source). The admin listener's context conforms.
public protocol WebRequestContext: RequestContext {
    /// The client's address (`127.0.0.1`), or `unknown`.
    var remoteAddress: String { get }
}
