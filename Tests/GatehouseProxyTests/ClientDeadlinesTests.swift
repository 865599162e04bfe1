import GatehouseConfig
import Testing

@testable import GatehouseProxy

/// The client time limits, event by event, without sockets or clocks.
@Suite struct ClientDeadlinesTests {
    static let s: UInt64 = 1_000_000_000
    let deadlines: ClientDeadlines = {
        var l = ClientLimits()
        l.headerTimeout = 10
        l.bodyTimeout = 20
        l.keepAliveTimeout = 30
        l.sendTimeout = 40
        l.requestTimeout = 100
        return ClientDeadlines(limits: l)
    }()

    func verdict(_ now: UInt64, _ c: ClientDeadlines.Connection, _ r: ClientDeadlines.Request? = nil) -> ClientDeadlines.Verdict {
        var r = r
        return deadlines.check(now: now * Self.s, connection: c, request: &r)
    }

    func waiting(since: UInt64, started: Bool, served: Int) -> ClientDeadlines.Connection {
        ClientDeadlines.Connection(waitingForHeadSince: since * Self.s, headStarted: started, requestsServed: served)
    }

    @Test func aNewConnectionHasTheHeaderTimeoutForItsFirstHead() {
        #expect(verdict(10, waiting(since: 0, started: false, served: 0)) == .none)
        // Never a byte: closed quietly, like an idle keep-alive connection.
        #expect(verdict(11, waiting(since: 0, started: false, served: 0)) == .closeIdle)
        #expect(verdict(11, waiting(since: 0, started: true, served: 0)) == .headTimedOut)
    }

    @Test func anIdleKeepAliveConnectionHasTheKeepAliveTimeoutUntilAHeadStarts() {
        #expect(verdict(25, waiting(since: 0, started: false, served: 3)) == .none)
        #expect(verdict(31, waiting(since: 0, started: false, served: 3)) == .closeIdle)
        // Once a head started (its first byte at 20 s), the header timeout counts from there.
        #expect(verdict(29, waiting(since: 20, started: true, served: 3)) == .none)
        #expect(verdict(31, waiting(since: 20, started: true, served: 3)) == .headTimedOut)
    }

    func body(
        started: UInt64 = 0, answeredAt: UInt64 = 0, upstreamWritable: Bool? = nil, blockedSince: UInt64 = 0
    ) -> ClientDeadlines.Request {
        ClientDeadlines.Request(
            requestEnded: false, answeredAt: answeredAt * Self.s, startNanos: started * Self.s,
            upstreamWritable: upstreamWritable, upstreamBlockedSince: blockedSince * Self.s, upstreamReadTimeout: 15)
    }

    @Test func aBodyMustKeepArrivingAndEndWithinTheRequestTimeout() {
        var c = ClientDeadlines.Connection(lastClientRead: 50 * Self.s)
        #expect(verdict(69, c, body()) == .none)
        guard case .bodyTimedOut(let why) = verdict(71, c, body()) else { Issue.record("not timed out"); return }
        #expect(why.contains("limits.body_timeout"))
        // A trickle (a byte every few seconds) still ends at the request timeout.
        c.lastClientRead = 99 * Self.s
        #expect(verdict(99, c, body()) == .none)
        guard case .bodyTimedOut(let whole) = verdict(101, c, body()) else { Issue.record("not timed out"); return }
        #expect(whole.contains("limits.request_timeout"))
    }

    @Test func silenceTheGatewayCausedIsNotTheClients() {
        let paused = ClientDeadlines.Connection(readOff: true, lastClientRead: 0)
        #expect(verdict(50, paused, body()) == .none)
    }

    @Test func anAnsweredRequestLingersTwoSecondsThenCloses() {
        let c = ClientDeadlines.Connection(lastClientRead: 0)
        #expect(verdict(5, c, body(answeredAt: 4)) == .none)
        #expect(verdict(7, c, body(answeredAt: 4)) == .lingerOver)
    }

    @Test func anUpstreamThatStopsTakingTheBodyTimesOutOnItsReadTimeout() {
        let c = ClientDeadlines.Connection(lastClientRead: 10 * Self.s)
        var r: ClientDeadlines.Request? = body(upstreamWritable: false)
        #expect(deadlines.check(now: 10 * Self.s, connection: c, request: &r) == .none)
        #expect(r?.upstreamBlockedSince == 10 * Self.s)
        #expect(deadlines.check(now: 20 * Self.s, connection: c, request: &r) == .none)
        #expect(deadlines.check(now: 26 * Self.s, connection: c, request: &r) == .upstreamStoppedReading)
        // Taking the body again resets the wait.
        var moving: ClientDeadlines.Request? = body(upstreamWritable: true, blockedSince: 10)
        #expect(deadlines.check(now: 26 * Self.s, connection: c, request: &moving) == .none)
        #expect(moving?.upstreamBlockedSince == 0)
    }

    @Test func aClientThatStopsReadingIsCutAfterTheSendTimeout() {
        var c = ClientDeadlines.Connection(unwritableSince: 10 * Self.s, clientWritable: false)
        #expect(verdict(49, c) == .none)
        #expect(verdict(51, c) == .clientStoppedReading)
        c.clientWritable = true
        #expect(verdict(51, c) == .none)
    }

    @Test func aClosingConnectionWhoseClientReadsNothingClosesAfterSendTimeoutAndLinger() {
        let c = ClientDeadlines.Connection(closingSince: 100 * Self.s, broken: true)
        #expect(verdict(141, c) == .none)
        #expect(verdict(143, c) == .closeNow)
        // A broken connection that is not closing is not timed.
        #expect(verdict(1000, ClientDeadlines.Connection(broken: true, waitingForHeadSince: 0)) == .none)
    }
}
