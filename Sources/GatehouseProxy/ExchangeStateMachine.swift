import GatehouseConfig
import GatehouseCore

/// The control state of one client connection and of the exchange it runs, as a value: events
/// in, actions out, in the manner of async-http-client's `HTTP1ConnectionStateMachine`.
///
/// It owns every decision about the connection's life: when a request may start, when reading
/// pauses, what happens to each piece of a body, when the upstream's silence or the client's
/// slowness ends an exchange (every time limit: header, body, request, keep-alive, send, linger,
/// the upstream's read timeout), whether the connection stays open after a response. It touches
/// no channel and reads no clock: each event carries the time it happened. `GatewayHandler` feeds
/// it events and carries out the actions it returns (socket work only); `Gatekeeper` decides the
/// request itself. Tested alone, event by event (`ExchangeStateMachineTests`).
struct ExchangeStateMachine {
    enum Phase: Equatable {
        /// No exchange runs: a head is awaited.
        case idle
        /// Collecting the body for checks that inspect it.
        case buffering
        /// Allowed; waiting for an upstream connection.
        case connecting
        /// Streaming to and from the upstream.
        case forwarding
        /// Answered (allowed and done, denied or failed); dropping the rest of the request body.
        case answered
    }

    /// The control state of the exchange in progress.
    struct Request: Equatable {
        var phase = Phase.idle
        let startNanos: UInt64
        var keepAlive: Bool
        /// The whole request body has been read (a request without one ends with its head).
        var requestEnded: Bool
        var responseStarted = false
        var responseEnded = false
        /// An HTTP/1.1 request: its client can read a 100 Continue and chunked responses.
        let http11: Bool
        let hasBody: Bool
        let expectContinue: Bool
        /// The Content-Length the client declared.
        let declaredLength: Int?
        var bodyBytesSeen = 0
        /// A body-size limit counted as the body streams (a `request` check's `max_body`); `Int.max`
        /// when there is none. The check that set it is the machine's `streamLimitCheck`: with no
        /// reference-counted field, a `Request` is copied and compared as plain bytes on every event.
        var streamLimitBytes = Int.max
        /// The route's limit on a body buffered for inspection.
        var maxBufferedBody = 0
        /// Body bytes held while the upstream connection is made.
        var pendingBytes = 0
        /// When the gateway answered while the request body was still arriving, 0 otherwise.
        var answeredAt: UInt64 = 0
        /// The upstream's read timeout (seconds), once an upstream is chosen.
        var upstreamReadTimeout: Double?
        /// Whether the read timeout applies (from the request sent until the response ends).
        var awaitingUpstream = false
        /// When the upstream last sent anything; the read timeout counts from here.
        var lastUpstreamActivity: UInt64 = 0
        /// Since when the upstream has not been taking the request body, 0 when it is.
        var upstreamBlockedSince: UInt64 = 0
        /// The response's end arranged for the connection to close after it.
        var closeScheduled = false
        /// The response is chunked towards the client (re-framed from the upstream's).
        var chunkedOut = false
        /// A stale pooled connection was already retried once.
        var retriedStale = false
    }

    /// What a parsed head tells the machine.
    struct Head: Equatable {
        var keepAlive: Bool
        var hasBody: Bool
        var expectContinue: Bool
        var http11: Bool
        var declaredLength: Int?
    }

    /// Why the connection's own rules end an exchange with an answer of the gateway's own (the
    /// handler renders it as a problem response, `ExchangeFailure`).
    enum Failure: Equatable {
        /// The client sent something that is not HTTP/1.x (the parser's description).
        case badRequest(String)
        /// The request head exceeds the parser's limit.
        case headTooLarge(String)
        /// A head began and did not complete in time (bytes of it that had arrived).
        case headTimedOut(received: Int)
        /// The body stalled or the whole request took too long (why, bytes seen).
        case bodyTimedOut(String, bytes: Int)
        /// A streamed body passed a `max_body` limit.
        case streamedBodyTooLarge(StreamedBodyLimit)
        /// A body buffered for inspection passed the route's limit.
        case bufferedBodyTooLarge(Int)
        /// The process-wide budget for buffered bodies is spent.
        case buffersFull(bytes: Int)
        /// The upstream took none of the request body for its read timeout.
        case upstreamStoppedReading
        /// The upstream sent nothing for its read timeout.
        case upstreamSilent
        /// No upstream connection could be made (the last error; whether it timed out).
        case upstreamUnreachable(String, timedOut: Bool)
        /// The upstream closed or broke the connection before its response head.
        case upstreamBroken(String)
        /// The upstream's response names another request (named, expected): the connection is
        /// out of step.
        case upstreamOutOfStep(String, expected: String)
        /// The route's upstream has no targets.
        case noUpstreamTargets
        /// The shutdown's grace period ended with this request still running.
        case shuttingDown
    }

    enum Action: Equatable {
        case none
        /// Close the connection now (nothing more is written).
        case close
        /// Answer with `failure` (already accounted for here); the upstream, any body held for
        /// it and any body buffered are dropped first.
        case fail(Failure)
        /// The exchange ends without a (further) answer: drop the upstream, log the exchange (499
        /// when nothing was answered), and close the connection at once when `close` (the
        /// response has started and nothing valid can follow, or the client stopped reading).
        case abandon(close: Bool)
        /// A new exchange for a request that never got a valid head, answered with `failure`.
        case failUnparsed(Failure)
        /// Answer locally with what the decision says (a denial or a preflight answer).
        case answer
        /// Read the body into a buffer for the checks; send `100 Continue` first when asked.
        case startBuffering(sendContinue: Bool)
        /// Open (or take from the pool) an upstream connection; `100 Continue` first when asked.
        case connect(sendContinue: Bool)
        /// Try the next upstream target, or a fresh connection to it.
        case retryConnect
    }

    /// What to do with a piece of the request body.
    enum BodyAction: Equatable {
        /// Append it to the buffered body, once the process-wide budget allows
        /// (`bufferBudgetSpent` otherwise).
        case buffer
        /// Hold it until the upstream connection is made; pause reading when `pauseReading`.
        case hold(pauseReading: Bool)
        case forward
        /// Answered already: read and discard.
        case discard
        case action(Action)
    }

    /// How the end of the request body is carried out.
    enum BodyEndAction: Equatable {
        case none
        /// The body is complete: run the checks that inspect it (`Gatekeeper.decideBody`).
        case decideBody
        /// End the body towards the upstream; schedule the read timer at `timer` when given.
        case endUpstreamBody(timer: UInt64?)
        /// The exchange is complete: log it.
        case finish
    }

    /// How a response the gateway has written ends the exchange.
    enum ResponseEnd: Equatable {
        /// Keep the connection; flush; log the exchange now when `finish` (otherwise once the
        /// body has been drained).
        case keepOpen(finish: Bool)
        /// Close once the last bytes are written; log the exchange.
        case closeWhenWritten
        /// The client is still sending its body: close the writing side once the last bytes are
        /// written, read and discard for a moment (`lingerNanos`), then close; log the exchange.
        /// Reading is turned back on when `resumeReading`.
        case linger(resumeReading: Bool)
    }

    /// What follows a logged exchange.
    enum AfterExchange: Equatable {
        case closeNow
        /// Close once what is being written is out (`flushFirst`: the response's end did not
        /// arrange it, so an empty write carries the close).
        case closeWhenWritten(flushFirst: Bool)
        /// Parse the next (pipelined) request, if one is waiting.
        case next
    }

    /// What the handler may do with bytes waiting between requests.
    enum NextHead: Equatable {
        case parse
        /// The current exchange still runs, or the client is not reading its answers.
        case wait
        /// Shutting down: no new requests; drop them.
        case drop
    }

    /// Bodies of denied requests larger than this are not drained: the connection closes instead.
    static let drainLimit = 1 << 20
    /// Pipelined bytes beyond this pause reading until the queue drains.
    static let pipelineLimit = 1 << 20
    /// Body bytes held for an upstream connection being made beyond this pause reading.
    static let holdLimit = 1 << 20

    let limits: ClientLimits
    private(set) var request: Request?
    /// The check that set the running request's streamed body limit (named in its denial).
    private(set) var streamLimitCheck = ""
    /// Reading has ended (a parse error, a close under way): nothing more is read or timed.
    private(set) var broken = false
    /// A graceful shutdown began: no new requests on this connection.
    private(set) var quiescing = false
    /// Reading from the client is paused by the gateway.
    private(set) var readOff = false
    /// Since when a request head is awaited; nil while a request runs.
    private(set) var waitingForHeadSince: UInt64?
    /// Bytes of the awaited head have arrived (the header timeout applies, not keep-alive's).
    private(set) var headStarted = false
    private(set) var requestsServed = 0
    /// When the client last sent anything: a body must keep arriving.
    private(set) var lastClientRead: UInt64
    /// Since when the client has not been reading what is written to it, 0 when it is.
    private(set) var unwritableSince: UInt64 = 0
    /// Since when the connection is to close once its last bytes are written, 0 when it is not.
    private(set) var closingSince: UInt64 = 0
    /// When the upstream read timer is due; 0 when none is scheduled.
    private(set) var timerDue: UInt64 = 0

    init(limits: ClientLimits, now: UInt64) {
        self.limits = limits
        waitingForHeadSince = now
        lastClientRead = now
    }

    var phase: Phase { request?.phase ?? .idle }

    // MARK: Reading

    /// Bytes arrived from the client. False when reading has ended (they are ignored).
    mutating func bytesArrived(now: UInt64) -> Bool {
        guard !broken else { return false }
        lastClientRead = now
        if request == nil, !headStarted {
            // The first bytes of a head: from now on the header timeout applies (keep-alive's until now).
            headStarted = true
            if requestsServed > 0 { waitingForHeadSince = now }
        }
        return true
    }

    var nextHead: NextHead {
        if request != nil || unwritableSince != 0 { return .wait }
        return quiescing ? .drop : .parse
    }

    /// Whether reading from the client should be on, given the bytes waiting to be parsed and
    /// whether the upstream takes more; the new setting when it changes, nil otherwise. Reading
    /// pauses while it would only pile data up: pipelined requests beyond `pipelineLimit`, a
    /// client that does not read its answers, a body held while the upstream connection is
    /// made, an upstream that cannot take more.
    mutating func reading(inboundBytes: Int, upstreamWritable: Bool?, now: @autoclosure () -> UInt64) -> Bool? {
        var want = inboundBytes <= Self.pipelineLimit && unwritableSince == 0
        if let r = request {
            if r.phase == .connecting, r.pendingBytes > Self.holdLimit { want = false }
            if r.phase == .forwarding, upstreamWritable == false { want = false }
        }
        guard want == readOff else { return nil }
        readOff = !want
        // While reading is paused the client's silence is the gateway's doing: the body timeout
        // counts again from when reading resumes.
        if want { lastClientRead = now() }
        return want
    }

    /// The client began or stopped reading what is written to it. True when answers were held
    /// back for it and the next pipelined request may now() be parsed.
    mutating func clientWritabilityChanged(_ writable: Bool, now: @autoclosure () -> UInt64) -> Bool {
        if writable {
            unwritableSince = 0
        } else if unwritableSince == 0 {
            unwritableSince = now()
        }
        return writable && request == nil && !broken
    }

    /// The bytes sent are not HTTP/1.x (`failure`: `badRequest` or `headTooLarge`).
    mutating func parseFailed(_ failure: Failure) -> Action {
        broken = true
        if request?.responseStarted == true { return .close }
        let running = request
        request = Request(
            phase: .answered, startNanos: running?.startNanos ?? 0, keepAlive: false, requestEnded: true, http11: running?.http11 ?? true,
            hasBody: false, expectContinue: false, declaredLength: nil)
        return .failUnparsed(failure)
    }

    // MARK: The exchange

    /// A request head was parsed; the decision (`Gatekeeper`) follows with `decided`.
    mutating func headParsed(_ head: Head, now: UInt64) {
        waitingForHeadSince = nil
        headStarted = false
        requestsServed += 1
        request = Request(
            startNanos: now, keepAlive: head.keepAlive && !quiescing, requestEnded: !head.hasBody, http11: head.http11,
            hasBody: head.hasBody, expectContinue: head.expectContinue, declaredLength: head.declaredLength)
    }

    /// What `Gatekeeper` decided, in the terms the connection needs.
    enum Decided: Equatable {
        case deny
        case answer
        case bufferBody(maxBytes: Int, streamLimit: StreamedBodyLimit?)
        case forward(streamLimit: StreamedBodyLimit?)
    }

    mutating func decided(_ decision: Decided, now: @autoclosure () -> UInt64) -> Action {
        // In place (`request!`), as on every event of the request path: no copy of the state out
        // and back.
        guard request != nil else { return .none }
        switch decision {
        case .deny:
            Self.answering(&request!, now: now())
            return .answer
        case .answer:
            request!.phase = .answered
            return .answer
        case .bufferBody(let maxBytes, let streamLimit):
            request!.phase = .buffering
            request!.maxBufferedBody = maxBytes
            setStreamLimit(streamLimit)
            return .startBuffering(sendContinue: request!.expectContinue && request!.http11)
        case .forward(let streamLimit):
            request!.phase = .connecting
            setStreamLimit(streamLimit)
            return .connect(sendContinue: request!.expectContinue && !request!.requestEnded && request!.http11)
        }
    }

    private mutating func setStreamLimit(_ limit: StreamedBodyLimit?) {
        request!.streamLimitBytes = limit?.bytes ?? .max
        streamLimitCheck = limit?.check ?? ""
    }

    /// The upstream chosen for the exchange (its read timeout, seconds).
    mutating func upstreamChosen(readTimeout: Double) {
        request?.upstreamReadTimeout = readTimeout
    }

    /// A piece of the request body of `bytes` bytes arrived.
    mutating func bodyPart(bytes: Int, now: @autoclosure () -> UInt64) -> BodyAction {
        guard var r = request else { return .discard }
        r.bodyBytesSeen += bytes
        if r.bodyBytesSeen > r.streamLimitBytes, r.phase != .answered, r.phase != .idle {
            request = r
            let limit = StreamedBodyLimit(bytes: r.streamLimitBytes, check: streamLimitCheck)
            return .action(abandon(with: .streamedBodyTooLarge(limit), now: now()))
        }
        defer { request = r }
        switch r.phase {
        case .buffering:
            if r.bodyBytesSeen > r.maxBufferedBody {
                Self.answering(&r, now: now())
                return .action(.fail(.bufferedBodyTooLarge(r.maxBufferedBody)))
            }
            return .buffer
        case .connecting:
            r.pendingBytes += bytes
            return .hold(pauseReading: r.pendingBytes > Self.holdLimit)
        case .forwarding:
            return .forward
        case .answered, .idle:
            if r.bodyBytesSeen > Self.drainLimit {
                if !r.responseEnded {
                    r.keepAlive = false
                } else {
                    return .action(.close)
                }
            }
            return .discard
        }
    }

    /// The buffered body could not grow: the process-wide budget is spent.
    mutating func bufferBudgetSpent(now: @autoclosure () -> UInt64) -> Action {
        guard var r = request else { return .none }
        Self.answering(&r, now: now())
        request = r
        return .fail(.buffersFull(bytes: r.bodyBytesSeen))
    }

    /// The request body ended.
    mutating func bodyEnded(now: @autoclosure () -> UInt64) -> BodyEndAction {
        guard request != nil else { return .none }
        request!.requestEnded = true
        switch request!.phase {
        case .buffering:
            return .decideBody
        case .connecting:
            return .none
        case .forwarding:
            return .endUpstreamBody(timer: request!.responseStarted ? nil : armReadTimeout(now: now()))
        case .answered, .idle:
            return request!.responseEnded ? .finish : .none
        }
    }

    // MARK: The upstream

    /// A connection to the upstream is ready (new or pooled). False when the exchange no longer
    /// waits for one (the connection goes back to the pool).
    func upstreamConnectionWanted() -> Bool { phase == .connecting }

    /// The request head (and whatever body was held) is being sent on the upstream connection.
    /// Returns when to schedule the read timer when the whole request has been sent, nil
    /// otherwise (`armed` tells whether the read timeout now applies).
    mutating func requestSent(now: UInt64) -> (armed: Bool, timer: UInt64?) {
        guard request != nil else { return (false, nil) }
        request!.phase = .forwarding
        request!.pendingBytes = 0
        guard request!.requestEnded else { return (false, nil) }
        return (true, armReadTimeout(now: now))
    }

    /// Connecting failed after `attempts` of `targets` targets.
    mutating func upstreamConnectFailed(
        attempts: Int, targets: Int, error: String, timedOut: Bool, now: @autoclosure () -> UInt64
    ) -> Action {
        guard phase == .connecting else { return .none }
        if attempts < targets { return .retryConnect }
        return failUpstream(.upstreamUnreachable(error, timedOut: timedOut), now: now())
    }

    /// The upstream's response head arrived (`chunked`: it is framed by chunks or by the close).
    /// Returns when to schedule the read timer, if a new one is needed.
    mutating func upstreamResponseHead(chunked: Bool, now: UInt64) -> UInt64? {
        guard request != nil else { return nil }
        let timer = armReadTimeout(now: now)
        request!.responseStarted = true
        if chunked {
            // Re-framed as chunks for an HTTP/1.1 client; an HTTP/1.0 client reads to the close.
            if request!.http11 { request!.chunkedOut = true } else { request!.keepAlive = false }
        }
        return timer
    }

    mutating func upstreamSent(now: UInt64) {
        request?.lastUpstreamActivity = now
    }

    /// The upstream's response ended. True when its connection may go back to the pool.
    mutating func upstreamResponseEnded(reusable: Bool) -> Bool {
        guard request != nil else { return false }
        request!.awaitingUpstream = false
        request!.responseEnded = true
        request!.phase = .answered
        if !request!.requestEnded, request!.hasBody { request!.keepAlive = false }
        return reusable && request!.requestEnded
    }

    /// The upstream connection failed. `retryable`: it came from the pool and closed without a
    /// byte (RFC 9112 §9.3.1), and the request may be sent again (idempotent, no body).
    mutating func upstreamFailed(receivedHead: Bool, retryable: Bool, error: String, now: @autoclosure () -> UInt64) -> Action {
        guard var r = request else { return .none }
        if receivedHead {
            r.awaitingUpstream = false
            r.responseEnded = true
            r.keepAlive = false
            request = r
            return .abandon(close: true)
        }
        if retryable, !r.retriedStale, !r.hasBody, r.requestEnded {
            r.retriedStale = true
            r.phase = .connecting
            request = r
            return .retryConnect
        }
        return failUpstream(.upstreamBroken(error), now: now())
    }

    /// The upstream answered another request on this connection: it is out of step.
    mutating func upstreamOutOfStep(_ named: String, expected: String, now: @autoclosure () -> UInt64) -> Action {
        failUpstream(.upstreamOutOfStep(named, expected: expected), now: now())
    }

    /// The route's upstream has no targets.
    mutating func noUpstreamTargets(now: @autoclosure () -> UInt64) -> Action {
        failUpstream(.noUpstreamTargets, now: now())
    }

    /// The read timer fired (`clientWritable`: whether the client takes what is written).
    mutating func readTimerFired(now: UInt64, clientWritable: Bool) -> (action: Action, reschedule: UInt64?) {
        timerDue = 0
        guard var r = request, r.awaitingUpstream, !r.responseEnded, let timeout = r.upstreamReadTimeout else { return (.none, nil) }
        let limit = ClientDeadlines.nanos(timeout)
        if !clientWritable {
            // Reading from the upstream is paused because the client reads slowly: that is not the
            // upstream's silence. The wait starts again once the client catches up.
            r.lastUpstreamActivity = now
        }
        if now &- r.lastUpstreamActivity < limit {
            request = r
            timerDue = r.lastUpstreamActivity + limit
            return (.none, timerDue)
        }
        r.awaitingUpstream = false
        request = r
        if r.responseStarted {
            // Mid-body: nothing valid can be sent any more; cut the connection.
            request!.responseEnded = true
            request!.keepAlive = false
            return (.abandon(close: true), nil)
        }
        return (failUpstream(.upstreamSilent, now: now), nil)
    }

    /// Arms the read timeout: the upstream must send something at least every `readTimeout`.
    /// One timer per connection, not per request: a new one is scheduled only when none is
    /// pending or the pending one is due later; when it fires it re-checks the last upstream
    /// activity. Returns when to schedule it, nil when the pending one serves.
    private mutating func armReadTimeout(now: UInt64) -> UInt64? {
        guard let timeout = request?.upstreamReadTimeout else { return nil }
        request!.lastUpstreamActivity = now
        request!.awaitingUpstream = true
        let due = now + ClientDeadlines.nanos(timeout)
        guard timerDue == 0 || timerDue > due else { return nil }
        timerDue = due
        return due
    }

    private mutating func failUpstream(_ failure: Failure, now: @autoclosure () -> UInt64) -> Action {
        guard var r = request else { return .none }
        r.awaitingUpstream = false
        if !r.requestEnded { r.keepAlive = false }
        Self.answering(&r, now: now())
        request = r
        return .fail(failure)
    }

    // MARK: Time limits and the connection's end

    /// The event loop's sweep (`ClientConnections`, every 250 ms): the client time limits at
    /// `now()`, decided by `ClientDeadlines`.
    /// `inboundBytes`: bytes read and not yet parsed (of a head that has not completed).
    mutating func tick(now: UInt64, clientWritable: Bool, upstreamWritable: Bool?, inboundBytes: Int) -> Action {
        let connection = ClientDeadlines.Connection(
            closingSince: closingSince, broken: broken, waitingForHeadSince: waitingForHeadSince, headStarted: headStarted,
            requestsServed: requestsServed, readOff: readOff, lastClientRead: lastClientRead, unwritableSince: unwritableSince,
            clientWritable: clientWritable)
        var deadline = request.map { r in
            ClientDeadlines.Request(
                requestEnded: r.requestEnded, answeredAt: r.answeredAt, startNanos: r.startNanos,
                upstreamWritable: r.phase == .forwarding && r.upstreamReadTimeout != nil ? upstreamWritable : nil,
                upstreamBlockedSince: r.upstreamBlockedSince, upstreamReadTimeout: r.upstreamReadTimeout ?? 0)
        }
        let verdict = ClientDeadlines(limits: limits).check(now: now, connection: connection, request: &deadline)
        if let d = deadline { request?.upstreamBlockedSince = d.upstreamBlockedSince }
        switch verdict {
        case .none:
            return .none
        case .closeNow:
            return .close
        case .closeIdle:
            broken = true
            return .close
        case .headTimedOut:
            broken = true
            waitingForHeadSince = nil
            request = Request(
                phase: .answered, startNanos: now, keepAlive: false, requestEnded: true, http11: true, hasBody: false,
                expectContinue: false, declaredLength: nil)
            return .failUnparsed(.headTimedOut(received: inboundBytes))
        case .lingerOver:
            request?.keepAlive = false
            return .abandon(close: true)
        case .bodyTimedOut(let why):
            return abandon(with: .bodyTimedOut(why, bytes: request?.bodyBytesSeen ?? 0), now: now)
        case .upstreamStoppedReading:
            guard request != nil else { return .none }
            if let cut = abandonOrCut() { return cut }
            return failUpstream(.upstreamStoppedReading, now: now)
        case .clientStoppedReading:
            guard var r = request else {
                broken = true
                return .close
            }
            r.awaitingUpstream = false
            r.responseEnded = true
            r.keepAlive = false
            request = r
            return .abandon(close: true)
        }
    }

    /// How readily this connection gives its place to a new client at the connection cap (lower
    /// first) and since when it has been in that state; nil when it is serving a request normally.
    func evictionRank(now: UInt64) -> (Int, UInt64)? {
        guard !broken else { return nil }
        guard let r = request else { return waitingForHeadSince.map { (0, $0) } }
        guard !r.requestEnded else { return nil }
        if r.answeredAt != 0 { return (1, r.answeredAt) }
        if !r.responseStarted, now &- r.startNanos > 1_000_000_000 { return (2, r.startNanos) }
        return nil
    }

    /// The connection cap was reached and this connection gives its place (see `evictionRank`).
    mutating func evict(now: @autoclosure () -> UInt64) -> Action {
        guard let r = request else {
            broken = true
            return .close
        }
        if r.answeredAt != 0 || r.responseStarted {
            request!.keepAlive = false
            return .abandon(close: true)
        }
        return abandon(
            with: .bodyTimedOut(
                "the gateway reached its connection cap (limits.max_connections) and this request's body had been arriving the longest",
                bytes: r.bodyBytesSeen), now: now())
    }

    /// A graceful shutdown began: idle connections close now(), busy ones after their response.
    mutating func quiesce() -> Action {
        quiescing = true
        guard request != nil else { return .close }
        request!.keepAlive = false
        return .none
    }

    /// The shutdown's grace period ended: a request still running is answered 503 (or cut when
    /// its response has started); the connection closes.
    mutating func shutdownDeadline(now: @autoclosure () -> UInt64) -> Action {
        quiescing = true
        guard request != nil else {
            broken = true
            return .close
        }
        return abandon(with: .shuttingDown, now: now())
    }

    /// The client closed the connection. Nothing more is read: requests it had queued behind
    /// the one in progress are never run (they would reach the upstream with nobody to answer).
    mutating func clientClosed() -> Action {
        broken = true
        guard var r = request else { return .close }
        if !r.responseEnded {
            // The client went away mid-exchange: the upstream is stopped, the call logged as 499.
            r.awaitingUpstream = false
            r.responseEnded = true
        }
        r.keepAlive = false
        request = r
        // Also an exchange answered before its request body ended (a denial draining the body):
        // the connection is gone, so it is logged now.
        return .abandon(close: true)
    }

    /// Gives up on an exchange that is still running: its upstream is dropped, nothing more of
    /// the body is forwarded, the connection will close. When the response has started nothing
    /// valid can be sent any more: `.abandon(close: true)`. Otherwise the exchange is answered with `failure`.
    private mutating func abandon(with failure: Failure, now: @autoclosure () -> UInt64) -> Action {
        if let cut = abandonOrCut() { return cut }
        Self.answering(&request!, now: now())
        return .fail(failure)
    }

    private mutating func abandonOrCut() -> Action? {
        guard var r = request else { return .close }
        r.awaitingUpstream = false
        r.pendingBytes = 0
        r.keepAlive = false
        defer { request = r }
        if r.responseStarted {
            r.responseEnded = true
            return .abandon(close: true)
        }
        return nil
    }

    /// The gateway answers the exchange itself (a denial or a failure).
    private static func answering(_ r: inout Request, now: @autoclosure () -> UInt64) {
        if !r.requestEnded { r.answeredAt = now() }
        r.phase = .answered
        if r.expectContinue && !r.requestEnded { r.keepAlive = false }
        if let cl = r.declaredLength, cl > drainLimit, !r.requestEnded { r.keepAlive = false }
    }

    /// A complete response of the gateway's own was handed to the channel.
    mutating func localResponseWritten(now: @autoclosure () -> UInt64) -> ResponseEnd {
        request?.responseStarted = true
        request?.responseEnded = true
        return responseWritten(now: now())
    }

    /// The response's last bytes were handed to the channel.
    mutating func responseWritten(now: @autoclosure () -> UInt64) -> ResponseEnd {
        guard request != nil else { return .keepOpen(finish: false) }
        if request!.keepAlive { return .keepOpen(finish: request!.responseEnded && request!.requestEnded) }
        request!.closeScheduled = true
        closingSince = now()
        guard request!.requestEnded else {
            let resume = readOff
            readOff = false
            return .linger(resumeReading: resume)
        }
        return .closeWhenWritten
    }

    /// The exchange was logged; `closeAfter`: the connection closes at once. `inboundBytes`: bytes
    /// already read of a next request.
    mutating func finished(closeAfter: Bool, inboundBytes: Int, now: @autoclosure () -> UInt64) -> AfterExchange {
        guard let r = request else { return .next }
        request = nil
        if closeAfter {
            broken = true
            return .closeNow
        }
        if !r.keepAlive || quiescing {
            // The connection closes once the response is written; nothing more is read. When the
            // response ended while keep-alive was still on (a denial that then drained the body
            // during a shutdown), the close is arranged here, after what is still being written.
            broken = true
            if closingSince == 0 { closingSince = now() }
            return .closeWhenWritten(flushFirst: !r.closeScheduled)
        }
        // Waiting for the next request: keep-alive's idle timeout applies until a head starts.
        waitingForHeadSince = now()
        headStarted = inboundBytes > 0
        return .next
    }
}
