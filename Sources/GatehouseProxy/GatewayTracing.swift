import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import Logging
import NIOConcurrencyHelpers
import OTel
import ServiceLifecycle
import Tracing

/// Request tracing over swift-otel: one server span per request and one client span per upstream
/// exchange, exported over OTLP/HTTP by swift-otel's batch processor.
///
/// Off unless the configuration has `tracing:`; then the data plane holds no instance and creates
/// no span. The tracer is bootstrapped into `InstrumentationSystem` once per process (tests start
/// several gateways in one process), and read from the configuration the process started with:
/// a reload does not change it.
///
/// A `Service`: it runs swift-otel's exporter, processor and tracer, and on graceful shutdown
/// flushes the spans still queued. Run it before the gateway in the `ServiceGroup`, so that it
/// stops after the gateway has drained (and ended its last spans).
public final class GatewayTracing: Service, Sendable {
    /// The settings the tracer was built from.
    public let settings: TracingSettings
    let tracer: any Tracer
    /// swift-otel's services (exporter, batch processor, tracer), run once per process.
    private let backend: NIOLockedValueBox<(any Service)?>

    private init(settings: TracingSettings, tracer: any Tracer, backend: any Service) {
        self.settings = settings
        self.tracer = tracer
        self.backend = NIOLockedValueBox(backend)
    }

    private static let process = NIOLockedValueBox<GatewayTracing?>(nil)

    /// The process's tracing, built and bootstrapped into `InstrumentationSystem` on the first
    /// call; later calls return the same instance (with the first call's settings, which a
    /// warning names when they differ).
    public static func bootstrap(_ settings: TracingSettings, logger: Logger) throws -> GatewayTracing {
        try process.withLockedValue { existing in
            if let existing {
                if existing.settings != settings {
                    logger.warning(
                        "tracing is already set up in this process; keeping its first settings",
                        metadata: ["otlp": "\(existing.settings.otlp)"])
                }
                return existing
            }
            var config = OTel.Configuration.default
            config.serviceName = settings.serviceName
            config.diagnosticLogger = .custom(logger)
            config.propagators = [.traceContext]
            config.logs.enabled = false
            config.metrics.enabled = false
            config.traces.enabled = true
            config.traces.exporter = .otlp
            config.traces.otlpExporter.endpoint = settings.tracesEndpoint
            config.traces.otlpExporter.protocol = settings.wireProtocol == .json ? .httpJSON : .httpProtobuf
            // A trace continued from a trusted proxy keeps its parent's decision; new ones are kept
            // at the configured ratio.
            config.traces.sampler = .parentBasedTraceIDRatio(ratio: settings.sampleRatio) ?? .parentBasedAlwaysOn
            let (tracer, service) = try OTel.makeTracingBackend(configuration: config)
            InstrumentationSystem.bootstrap(tracer)
            let made = GatewayTracing(settings: settings, tracer: tracer, backend: service)
            existing = made
            return made
        }
    }

    /// Runs swift-otel's services until graceful shutdown, which flushes the queued spans. A
    /// second run in the same process (a second gateway) only waits for shutdown.
    public func run() async throws {
        let service = backend.withLockedValue { b in
            defer { b = nil }
            return b
        }
        if let service {
            try await service.run()
        } else {
            try await gracefulShutdown()
        }
    }

    // MARK: Spans

    /// Starts a request's server span, named for its method until the route is known (`end`
    /// renames it). A `traceparent` from a trusted proxy continues its trace; from any other peer
    /// it is ignored, so a client cannot choose the trace the gateway records.
    func startRequestSpan(method: String, incoming: TraceFields?) -> any Span {
        var context = ServiceContext.topLevel
        if let incoming {
            tracer.extract(incoming, into: &context, using: TraceFields.Extract())
        }
        return tracer.startSpan(method, context: context, ofKind: .server)
    }

    /// Starts the client span of one upstream exchange and returns it with the fields that carry
    /// its context upstream.
    func startUpstreamSpan(parent: any Span, method: String, target: HostPort?) -> (any Span, TraceFields) {
        let span = tracer.startSpan(method, context: parent.context, ofKind: .client)
        if let target {
            span.updateAttributes { a in
                a["server.address"] = SpanAttribute.string(target.host)
                a["server.port"] = SpanAttribute.int64(Int64(target.port))
            }
        }
        var fields = TraceFields()
        tracer.inject(span.context, into: &fields, using: TraceFields.Inject())
        return (span, fields)
    }

    /// Ends an upstream span: with the upstream's status when it answered, or as an error.
    static func endUpstreamSpan(_ span: any Span, status: Int, failure: String?) {
        span.updateAttributes { a in
            if status > 0 { a["http.response.status_code"] = SpanAttribute.int64(Int64(status)) }
            if let failure { a["error.type"] = SpanAttribute.string(failure) }
        }
        if failure != nil || status >= 500 { span.setStatus(SpanStatus(code: .error, message: failure)) }
        span.end()
    }

    /// Ends a request's server span with what its call-log record says: the span's name is
    /// `"<method> <route>"` and its target is the call log's redacted one.
    static func endRequestSpan(_ span: any Span, _ ex: Exchange) {
        let route = ex.route?.name
        span.operationName = "\(ex.head.method) \(route ?? "unrouted")"
        let decision: String
        if let denial = ex.denial {
            decision = ex.upstreamSpec == nil ? "deny" : "failed"
            span.updateAttributes { a in a["gatehouse.reason"] = SpanAttribute.string(denial.code.rawValue) }
        } else {
            decision = ex.upstreamSpec == nil ? "answer" : "allow"
        }
        let path = CallLogRedaction.redact(uri: ex.head.uri, route: ex.route)
        span.updateAttributes { a in
            a["http.request.method"] = SpanAttribute.string(ex.head.method)
            a["url.path"] = SpanAttribute.string(path)
            a["http.response.status_code"] = SpanAttribute.int64(Int64(ex.status))
            a["gatehouse.decision"] = SpanAttribute.string(decision)
            a["gatehouse.request_id"] = SpanAttribute.string(ex.requestID)
            if let route { a["gatehouse.route"] = SpanAttribute.string(route) }
            if let check = ex.decidingCheck { a["gatehouse.deciding_check"] = SpanAttribute.string(check) }
        }
        if ex.status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }
}

/// The W3C trace-context fields of a request: read from a trusted proxy's request, written into
/// the request sent upstream.
struct TraceFields: Sendable {
    var traceparent: String?
    var tracestate: String?

    /// Field names the gateway writes itself when tracing is on (the client's are dropped).
    static let names = HeaderNameSet(["traceparent", "tracestate"])

    struct Extract: Extractor {
        func extract(key: String, from carrier: TraceFields) -> String? {
            switch key {
            case "traceparent": carrier.traceparent
            case "tracestate": carrier.tracestate
            default: nil
            }
        }
    }

    struct Inject: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout TraceFields) {
            switch key {
            case "traceparent": carrier.traceparent = value
            case "tracestate": carrier.tracestate = value
            default: break
            }
        }
    }
}
