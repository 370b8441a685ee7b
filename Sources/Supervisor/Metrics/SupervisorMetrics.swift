// The supervisor's own events, recorded when they happen through the swift-metrics API into the
// Prometheus registry the endpoint renders: worker restarts by cause and reloads with their
// duration. They live in this process (they are not in shared memory): a binary upgrade starts them
// from zero. Recorded whether or not the endpoint is on, so a reload that turns it on shows them.

import CoreMetrics
import Prometheus

final class SupervisorMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    static let restarts = "vmessd_worker_restarts_total"
    static let reloads = "vmessd_reloads_total"
    static let reloadDuration = "vmessd_reload_duration_seconds"

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // A reload spawns a generation and waits for it to be ready: tens of milliseconds to the
        // ready timeout (60 s).
        factory.durationHistogramBuckets[Self.reloadDuration] = [
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        self.factory = factory
    }

    /// Why a current worker was restarted: bounded labels (`cause` one of four words, `code` a signal
    /// name or an exit status 0-255).
    enum RestartCause {
        case signal(String), exit(Int32), readyTimeout, unresponsive

        var labels: [(String, String)] {
            switch self {
            case .signal(let name): [("cause", "signal"), ("code", name)]
            case .exit(let status): [("cause", "exit"), ("code", "\(status)")]
            case .readyTimeout: [("cause", "ready_timeout"), ("code", "")]
            case .unresponsive: [("cause", "unresponsive"), ("code", "")]
            }
        }
    }

    func workerRestarted(_ cause: RestartCause) {
        CoreMetrics.Counter(label: Self.restarts, dimensions: cause.labels, factory: factory).increment()
    }

    /// `result`: ok (the new generation serves), failed (it never became ready), invalid (the config
    /// was refused; no generation was started, duration 0).
    func reloaded(result: String, seconds: Double) {
        CoreMetrics.Counter(label: Self.reloads, dimensions: [("result", result)], factory: factory).increment()
        CoreMetrics.Timer(label: Self.reloadDuration, dimensions: [("result", result)], factory: factory)
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }
}
