import GatehouseConfig
import GatehouseCore
import Testing

@testable import GatehouseProxy

/// The connection's control state, event by event, without sockets or clocks: each test feeds
/// the events a connection sees and checks the actions a handler would carry out.
@Suite struct ExchangeStateMachineTests {
    typealias M = ExchangeStateMachine
    static let s: UInt64 = 1_000_000_000

    static let limits: ClientLimits = {
        var l = ClientLimits()
        l.headerTimeout = 10
        l.bodyTimeout = 20
        l.keepAliveTimeout = 30
        l.sendTimeout = 40
        l.requestTimeout = 100
        return l
    }()

    func machine() -> M { M(limits: Self.limits, now: 0) }

    static func head(
        body: Bool = false, keepAlive: Bool = true, expect: Bool = false, http11: Bool = true, length: Int? = nil
    ) -> M.Head {
        M.Head(keepAlive: keepAlive, hasBody: body, expectContinue: expect, http11: http11, declaredLength: length)
    }

    /// A request forwarded to the upstream and answered, then the next on the same connection.
    @Test func aForwardedRequestEndsAndTheConnectionWaitsForTheNext() {
        var m = machine()
        let arrived = m.bytesArrived(now: 1 * Self.s)
        #expect(arrived)
        #expect(m.nextHead == .parse)
        m.headParsed(Self.head(), now: 1 * Self.s)
        #expect(m.nextHead == .wait)
        #expect(m.decided(.forward(streamLimit: nil), now: 1 * Self.s) == .connect(sendContinue: false))
        m.upstreamChosen(readTimeout: 15)
        #expect(m.phase == .connecting)
        // The whole request is sent: the read timeout applies, a timer is due 15 s later.
        let sent = m.requestSent(now: 2 * Self.s)
        #expect(sent.armed)
        #expect(sent.timer == 17 * Self.s)
        // The response head re-arms the timeout; the pending timer (due earlier) serves.
        #expect(m.upstreamResponseHead(chunked: false, now: 3 * Self.s) == nil)
        let pooled = m.upstreamResponseEnded(reusable: true)
        #expect(pooled)
        #expect(m.responseWritten(now: 4 * Self.s) == .keepOpen(finish: true))
        #expect(m.finished(closeAfter: false, inboundBytes: 0, now: 4 * Self.s) == .next)
        #expect(m.nextHead == .parse)
        #expect(m.requestsServed == 1)
    }

    @Test func aResponseToAnHTTP10ClientIsNotChunkedAndClosesTheConnection() {
        var m = machine()
        m.headParsed(Self.head(http11: false), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        m.upstreamChosen(readTimeout: 15)
        _ = m.requestSent(now: 0)
        _ = m.upstreamResponseHead(chunked: true, now: 0)
        #expect(m.request?.chunkedOut == false)
        #expect(m.request?.keepAlive == false)
        _ = m.upstreamResponseEnded(reusable: true)
        #expect(m.responseWritten(now: 0) == .closeWhenWritten)
        #expect(m.finished(closeAfter: false, inboundBytes: 0, now: 0) == .closeWhenWritten(flushFirst: false))
    }

    @Test func continueIsSentOnlyToHTTP11ClientsThatAskAndWhoseBodyIsStillToCome() {
        var m = machine()
        m.headParsed(Self.head(body: true, expect: true), now: 0)
        #expect(m.decided(.forward(streamLimit: nil), now: 0) == .connect(sendContinue: true))
        var b = machine()
        b.headParsed(Self.head(body: true, expect: true), now: 0)
        #expect(b.decided(.bufferBody(maxBytes: 1024, streamLimit: nil), now: 0) == .startBuffering(sendContinue: true))
        var old = machine()
        old.headParsed(Self.head(body: true, expect: true, http11: false), now: 0)
        #expect(old.decided(.forward(streamLimit: nil), now: 0) == .connect(sendContinue: false))
    }

    @Test func aBufferedBodyOverTheRouteLimitIsRefusedAndDrained() {
        var m = machine()
        m.headParsed(Self.head(body: true, length: 3000), now: 0)
        _ = m.decided(.bufferBody(maxBytes: 2048, streamLimit: nil), now: 0)
        #expect(m.bodyPart(bytes: 2000, now: 1) == .buffer)
        #expect(m.bodyPart(bytes: 1000, now: 2) == .action(.fail(.bufferedBodyTooLarge(2048))))
        // Answered mid-body: the rest is read and discarded, the connection kept (a small body).
        #expect(m.request?.answeredAt == 2)
        #expect(m.localResponseWritten(now: 3) == .keepOpen(finish: false))
        #expect(m.bodyEnded(now: 4) == .finish)
        #expect(m.finished(closeAfter: false, inboundBytes: 0, now: 4) == .next)
    }

    @Test func aDeniedRequestWithAHugeDeclaredBodyClosesInsteadOfDraining() {
        var m = machine()
        m.headParsed(Self.head(body: true, length: 50 << 20), now: 0)
        #expect(m.decided(.deny, now: 1) == .answer)
        #expect(m.request?.keepAlive == false)
        // The client is still sending: a lingering close, reading back on if it was off.
        #expect(m.localResponseWritten(now: 2) == .linger(resumeReading: false))
    }

    @Test func aDrainedBodyBeyondTheDrainLimitEndsTheConnection() {
        var m = machine()
        m.headParsed(Self.head(body: true), now: 0)
        _ = m.decided(.deny, now: 0)
        #expect(m.bodyPart(bytes: M.drainLimit, now: 1) == .discard)
        #expect(m.request?.keepAlive == true)
        #expect(m.bodyPart(bytes: 1, now: 1) == .discard)
        #expect(m.request?.keepAlive == false)
        _ = m.localResponseWritten(now: 2)
        #expect(m.bodyPart(bytes: 1, now: 3) == .action(.close))
    }

    @Test func aStreamedBodyPastItsLimitIsRefusedOrCut() {
        let limit = StreamedBodyLimit(bytes: 100, check: "shape")
        var m = machine()
        m.headParsed(Self.head(body: true), now: 0)
        _ = m.decided(.forward(streamLimit: limit), now: 0)
        m.upstreamChosen(readTimeout: 15)
        #expect(m.bodyPart(bytes: 60, now: 1) == .hold(pauseReading: false))
        _ = m.requestSent(now: 1)
        #expect(m.bodyPart(bytes: 60, now: 2) == .action(.fail(.streamedBodyTooLarge(limit))))
        #expect(m.request?.keepAlive == false)
        // Once the response has started nothing valid can follow: the exchange is cut.
        var started = machine()
        started.headParsed(Self.head(body: true), now: 0)
        _ = started.decided(.forward(streamLimit: limit), now: 0)
        started.upstreamChosen(readTimeout: 15)
        _ = started.requestSent(now: 0)
        _ = started.upstreamResponseHead(chunked: false, now: 1)
        #expect(started.bodyPart(bytes: 101, now: 2) == .action(.abandon(close: true)))
    }

    @Test func aBodyHeldForAConnectionBeingMadePausesReadingPastItsLimit() {
        var m = machine()
        m.headParsed(Self.head(body: true), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        #expect(m.bodyPart(bytes: M.holdLimit, now: 1) == .hold(pauseReading: false))
        #expect(m.bodyPart(bytes: 1, now: 1) == .hold(pauseReading: true))
        #expect(m.reading(inboundBytes: 0, upstreamWritable: nil, now: 1) == false)
        #expect(m.readOff)
        // Sent: the held bytes are gone, reading resumes and the body timeout counts from now.
        _ = m.requestSent(now: 5 * Self.s)
        #expect(m.reading(inboundBytes: 0, upstreamWritable: true, now: 5 * Self.s) == true)
        #expect(m.lastClientRead == 5 * Self.s)
    }

    @Test func pipelinedBytesPauseReadingUntilTheyAreParsed() {
        var m = machine()
        #expect(m.reading(inboundBytes: M.pipelineLimit, upstreamWritable: nil, now: 0) == nil)
        #expect(m.reading(inboundBytes: M.pipelineLimit + 1, upstreamWritable: nil, now: 0) == false)
        #expect(m.reading(inboundBytes: 10, upstreamWritable: nil, now: 0) == true)
        // A client that does not read its answers gets no more of its requests read.
        _ = m.clientWritabilityChanged(false, now: 1)
        #expect(m.nextHead == .wait)
        #expect(m.reading(inboundBytes: 0, upstreamWritable: nil, now: 1) == false)
        let resume = m.clientWritabilityChanged(true, now: 2)
        #expect(resume)
        #expect(m.nextHead == .parse)
    }

    @Test func theHeaderTimeoutAnswers408AndAnIdleConnectionClosesQuietly() {
        var started = machine()
        _ = started.bytesArrived(now: 1 * Self.s)
        #expect(started.tick(now: 9 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 7) == .none)
        #expect(
            started.tick(now: 11 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 7)
                == .failUnparsed(.headTimedOut(received: 7)))
        #expect(started.broken)
        #expect(started.localResponseWritten(now: 11 * Self.s) == .closeWhenWritten)
        var idle = machine()
        #expect(idle.tick(now: 11 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 0) == .close)
        // After a first request the idle limit is keep-alive's.
        var kept = machine()
        kept.headParsed(Self.head(), now: 0)
        _ = kept.decided(.deny, now: 0)
        _ = kept.localResponseWritten(now: 0)
        _ = kept.finished(closeAfter: false, inboundBytes: 0, now: 1 * Self.s)
        #expect(kept.tick(now: 25 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 0) == .none)
        #expect(kept.tick(now: 32 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 0) == .close)
    }

    @Test func aStalledBodyIs408AndAnUpstreamThatStopsReadingIs504() {
        var m = machine()
        m.headParsed(Self.head(body: true), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        m.upstreamChosen(readTimeout: 15)
        _ = m.requestSent(now: 0)
        _ = m.bytesArrived(now: 1 * Self.s)
        // The upstream stops taking the body at 2 s; 15 s later it is given up.
        #expect(m.tick(now: 2 * Self.s, clientWritable: true, upstreamWritable: false, inboundBytes: 0) == .none)
        #expect(m.tick(now: 18 * Self.s, clientWritable: true, upstreamWritable: false, inboundBytes: 0) == .fail(.upstreamStoppedReading))
        var stalled = machine()
        stalled.headParsed(Self.head(body: true), now: 0)
        _ = stalled.decided(.bufferBody(maxBytes: 1 << 20, streamLimit: nil), now: 0)
        _ = stalled.bytesArrived(now: 1 * Self.s)
        guard
            case .fail(.bodyTimedOut(let why, bytes: 0)) = stalled.tick(
                now: 22 * Self.s, clientWritable: true, upstreamWritable: nil, inboundBytes: 0)
        else {
            Issue.record("not timed out")
            return
        }
        #expect(why.contains("limits.body_timeout"))
    }

    @Test func theReadTimerWaitsForASlowClientAndFailsASilentUpstream() {
        var m = machine()
        m.headParsed(Self.head(), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        m.upstreamChosen(readTimeout: 15)
        #expect(m.requestSent(now: 0).timer == 15 * Self.s)
        // The client is not reading: not the upstream's silence, the wait starts again.
        let slow = m.readTimerFired(now: 15 * Self.s, clientWritable: false)
        #expect(slow.action == .none)
        #expect(slow.reschedule == 30 * Self.s)
        let silent = m.readTimerFired(now: 30 * Self.s, clientWritable: true)
        #expect(silent.action == .fail(.upstreamSilent))
        #expect(m.phase == .answered)
        // Mid-response, the exchange is cut instead.
        var mid = machine()
        mid.headParsed(Self.head(), now: 0)
        _ = mid.decided(.forward(streamLimit: nil), now: 0)
        mid.upstreamChosen(readTimeout: 15)
        _ = mid.requestSent(now: 0)
        _ = mid.upstreamResponseHead(chunked: true, now: 1 * Self.s)
        #expect(mid.readTimerFired(now: 17 * Self.s, clientWritable: true).action == .abandon(close: true))
    }

    @Test func aStalePooledConnectionIsRetriedOnceForAnIdempotentRequestWithoutABody() {
        var m = machine()
        m.headParsed(Self.head(), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        m.upstreamChosen(readTimeout: 15)
        _ = m.requestSent(now: 0)
        #expect(m.upstreamFailed(receivedHead: false, retryable: true, error: "closed", now: 1) == .retryConnect)
        #expect(m.phase == .connecting)
        _ = m.requestSent(now: 2)
        #expect(m.upstreamFailed(receivedHead: false, retryable: true, error: "closed", now: 3) == .fail(.upstreamBroken("closed")))
        var withBody = machine()
        withBody.headParsed(Self.head(body: true), now: 0)
        _ = withBody.decided(.forward(streamLimit: nil), now: 0)
        _ = withBody.bodyEnded(now: 0)
        #expect(withBody.upstreamFailed(receivedHead: false, retryable: true, error: "closed", now: 1) == .fail(.upstreamBroken("closed")))
        // A response that broke off after its head: nothing valid can follow.
        var broken = machine()
        broken.headParsed(Self.head(), now: 0)
        _ = broken.decided(.forward(streamLimit: nil), now: 0)
        #expect(broken.upstreamFailed(receivedHead: true, retryable: false, error: "reset", now: 1) == .abandon(close: true))
    }

    @Test func everyTargetIsTriedBeforeTheRequestFails() {
        var m = machine()
        m.headParsed(Self.head(), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        #expect(m.upstreamConnectFailed(attempts: 1, targets: 3, error: "refused", timedOut: false, now: 1) == .retryConnect)
        #expect(m.upstreamConnectFailed(attempts: 2, targets: 3, error: "refused", timedOut: false, now: 1) == .retryConnect)
        #expect(
            m.upstreamConnectFailed(attempts: 3, targets: 3, error: "refused", timedOut: false, now: 1)
                == .fail(.upstreamUnreachable("refused", timedOut: false)))
        // A late failure after the exchange moved on changes nothing.
        #expect(m.upstreamConnectFailed(attempts: 3, targets: 3, error: "refused", timedOut: false, now: 2) == .none)
    }

    @Test func aGracefulShutdownClosesIdleConnectionsAndBusyOnesAfterTheirResponse() {
        var idle = machine()
        #expect(idle.quiesce() == .close)
        var busy = machine()
        busy.headParsed(Self.head(), now: 0)
        _ = busy.decided(.forward(streamLimit: nil), now: 0)
        #expect(busy.quiesce() == .none)
        #expect(busy.request?.keepAlive == false)
        _ = busy.upstreamResponseHead(chunked: false, now: 0)
        _ = busy.upstreamResponseEnded(reusable: true)
        #expect(busy.responseWritten(now: 1) == .closeWhenWritten)
        #expect(busy.nextHead == .wait)
        // At the deadline, a request still running is answered 503.
        var late = machine()
        late.headParsed(Self.head(), now: 0)
        _ = late.decided(.forward(streamLimit: nil), now: 0)
        #expect(late.shutdownDeadline(now: 5) == .fail(.shuttingDown))
        var lateIdle = machine()
        #expect(lateIdle.shutdownDeadline(now: 5) == .close)
    }

    @Test func aClientThatLeavesMidExchangeIsLoggedAnd499AndNothingQueuedRuns() {
        var m = machine()
        m.headParsed(Self.head(), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        #expect(m.clientClosed() == .abandon(close: true))
        #expect(m.request?.responseEnded == true)
        #expect(m.broken)
        // Requests the client had queued behind it are never parsed.
        #expect(m.finished(closeAfter: true, inboundBytes: 300, now: 1) == .closeNow)
        let read = m.bytesArrived(now: 2)
        #expect(!read)
        var idle = machine()
        #expect(idle.clientClosed() == .close)
    }

    @Test func bytesThatAreNotHTTPAreAnsweredUnlessAResponseHasStarted() {
        var m = machine()
        m.headParsed(Self.head(body: true), now: 0)
        _ = m.decided(.forward(streamLimit: nil), now: 0)
        #expect(m.parseFailed(.badRequest("bad chunk")) == .failUnparsed(.badRequest("bad chunk")))
        #expect(m.broken)
        #expect(m.request?.keepAlive == false)
        #expect(m.localResponseWritten(now: 1) == .closeWhenWritten)
        var started = machine()
        started.headParsed(Self.head(body: true), now: 0)
        _ = started.decided(.forward(streamLimit: nil), now: 0)
        _ = started.upstreamResponseHead(chunked: false, now: 0)
        #expect(started.parseFailed(.badRequest("bad chunk")) == .close)
        let read = started.bytesArrived(now: 1)
        #expect(!read)
    }

    @Test func theConnectionCapEvictsIdleThenDrainingThenSlowBodies() {
        var idle = machine()
        var draining = machine()
        draining.headParsed(Self.head(body: true), now: 0)
        _ = draining.decided(.deny, now: 3 * Self.s)
        var slow = machine()
        slow.headParsed(Self.head(body: true), now: 0)
        _ = slow.decided(.bufferBody(maxBytes: 1 << 20, streamLimit: nil), now: 0)
        var normal = machine()
        normal.headParsed(Self.head(), now: 0)
        _ = normal.decided(.forward(streamLimit: nil), now: 0)
        let now = 5 * Self.s
        #expect(idle.evictionRank(now: now)?.0 == 0)
        #expect(draining.evictionRank(now: now)?.0 == 1)
        #expect(slow.evictionRank(now: now)?.0 == 2)
        #expect(normal.evictionRank(now: now) == nil)
        #expect(idle.evict(now: now) == .close)
        #expect(draining.evict(now: now) == .abandon(close: true))
        guard case .fail(.bodyTimedOut(let why, _)) = slow.evict(now: now) else {
            Issue.record("not refused")
            return
        }
        #expect(why.contains("max_connections"))
    }
}
