import GatehouseProxy
import Metrics

// Only these two: Prometheus has a `Counter` and a `Gauge` of its own, and the gateway records
// through swift-metrics' types.
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory

/// The process's metrics backend: swift-metrics bootstrapped once over a Prometheus collector
/// registry, which `/metrics` on the admin listener renders.
package enum MetricsExposition {
    /// The process's registry; the first use bootstraps `MetricsSystem` with a Prometheus factory
    /// over it (swift-metrics allows one bootstrap per process, and tests start several gateways
    /// in one process).
    private static let processRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = GatewayMetrics.durationBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Bootstraps swift-metrics once per process and returns the registry `/metrics` renders.
    /// Metrics created before the first call go nowhere, so the gateway calls it before it builds
    /// anything that creates one (the call-log writer, rate-limit checks, the data plane's metrics).
    package static func bootstrap() -> PrometheusCollectorRegistry { processRegistry }

    /// Sets the values read at scrape time, then renders every metric in Prometheus text format
    /// (version 0.0.4).
    package static func render(_ metrics: GatewayMetrics, _ now: GatewayMetrics.Snapshot) -> [UInt8] {
        metrics.scrape(now)
        var out: [UInt8] = []
        out.reserveCapacity(16 << 10)
        processRegistry.emit(into: &out)
        return out
    }
}
