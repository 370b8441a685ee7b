// The Prometheus endpoint's side of the supervisor: starting and rebinding it (at start, at a reload
// that changes its address, around a binary upgrade) and the sample a scrape reads on this loop.

import Foundation
import Glibc
import Shared

extension WorkerPool {
    /// Starts the endpoint (nil: none). A failure to bind is the caller's to report.
    func startMetrics(_ settings: MetricsSettings?) throws {
        guard let settings else { return }
        if bridge == nil { bridge = try MainLoopBridge() }
        let bridge = self.bridge!
        let exporter = metricsExporter
        metricsServer = try MetricsServer(settings: settings, render: {
            guard let sample = await bridge.perform({ pool in pool?.metricsSample() }) else { return nil }
            return exporter.render(sample)
        }, logger: logger)
    }

    /// A reload: the endpoint rebinds only when its address changed (a new `userLabels` is read
    /// from the served config at each scrape). The new address is bound before the old one is let
    /// go, so scrapes never find nobody; when the two overlap (the same port on the wildcard
    /// address) the old one goes first; if the new one cannot be bound at all, the old one stays.
    func reloadMetrics(_ next: MetricsSettings?) {
        let current = metricsServer?.settings
        guard current?.host != next?.host || current?.port != next?.port else { return }
        guard let next else {
            metricsServer?.stop()
            metricsServer = nil
            logger.notice("metrics endpoint off")
            return
        }
        let old = metricsServer
        metricsServer = nil
        do {
            try startMetrics(next)
            old?.stop()
            return
        } catch {
            guard let old else {
                return logger.error("cannot start the metrics endpoint", metadata: ["address": "\(next.address)", "error": "\(error)"])
            }
            // Maybe the old socket holds the port (127.0.0.1:9550 → 0.0.0.0:9550): free it, try again.
            old.stop(wait: true)
        }
        do {
            try startMetrics(next)
        } catch {
            logger.error("cannot start the metrics endpoint on the new address; keeping the old one", metadata: [
                "address": "\(next.address)", "error": "\(error)",
            ])
            do {
                try startMetrics(current)
            } catch {
                logger.error("cannot bind the old metrics address again; the endpoint is off", metadata: ["error": "\(error)"])
            }
        }
    }

    /// What a scrape reports: shared memory and the worker table, read on this loop.
    func metricsSample() -> MetricsSample {
        var s = MetricsSample()
        s.userLabels = config.daemon.metrics?.userLabels ?? false
        let totals = workerTotals()
        s.accepted = totals.accepted
        s.bytesUp = totals.bytesUp
        s.bytesDown = totals.bytesDown
        s.acceptErrors = totals.acceptErrors
        s.reasons = reasonTable.entries()
        s.replayEvictions = region.replayBucketOverflows
        s.metrics = metricTable.entries()
        if s.userLabels { s.users = userTable.entries() }
        s.skew = SkewHistogram.Outcome.allCases.map { SkewHistogram.read($0, from: region) }
        s.generation = generation
        s.workers = workers.values.sorted { ($0.generation, $0.index) < ($1.generation, $1.index) }.map { worker in
            let slot = worker.sharedSlot
            return MetricsSample.Worker(index: worker.index, generation: worker.generation, state: worker.state.rawValue,
                                        connections: slot.map { slots.read($0).open } ?? 0,
                                        lag: slot.map { slots.lag($0) } ?? WorkerLag())
        }
        return s
    }

    /// The restart metric's cause of a current worker's unexpected exit.
    static func restartCause(_ worker: Worker, _ status: ChildStatus) -> SupervisorMetrics.RestartCause {
        if worker.killedNotReady { return .readyTimeout }
        if worker.killedUnresponsive { return .unresponsive }
        switch status.kind {
        case .exited(let code): return .exit(code)
        case .signaled(let signal): return .signal(signalName(signal))
        }
    }
}
