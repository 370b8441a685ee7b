// Turns a MetricsSample into the Prometheus text exposition format (0.0.4). The totals in shared
// memory are the truth; at each scrape they are copied into swift-prometheus gauges and counters (a
// counter is "set" by reset and increment: the values only go up between scrapes because the region
// only goes up) and the registry renders them, together with the supervisor's own events
// (SupervisorMetrics). The clock-skew histogram is read whole from shared memory, which
// swift-prometheus's Histogram cannot take (it only records single values), so it is written here.
//
// Series that stop existing (a worker that exited, user series after `userLabels` was turned off)
// are unregistered, so a scrape never shows a stale value.

import Foundation
import Prometheus
import Shared

final class MetricsExporter: @unchecked Sendable {
    private let registry: PrometheusCollectorRegistry
    /// Scrapes run on the metrics thread and in tasks: one at a time through the registry.
    private let lock = NSLock()
    private var previousCounters: [ObjectIdentifier: Prometheus.Counter] = [:]
    private var previousGauges: [ObjectIdentifier: Gauge] = [:]
    private var counters: [ObjectIdentifier: Prometheus.Counter] = [:]
    private var gauges: [ObjectIdentifier: Gauge] = [:]

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func render(_ sample: MetricsSample) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        apply(sample)
        var out = registry.emitToBuffer()
        appendSkew(sample.skew, to: &out)
        return out
    }

    // MARK: families (name, help): one label set per name, always the same (the registry insists)

    private enum Family {
        static func d(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "vmessd", metricName: name, unitName: unit, helpText: help)
        }
        static let accepted = d("connections_accepted", "total", "Client connections accepted by all workers since start.")
        static let active = d("connections", "active", "Client connections open now.")
        static let traffic = d("traffic", "bytes_total", "Payload bytes relayed, by direction (up: client to target).")
        static let acceptErrors = d("accept_errors", "total", "accept(2) failures (descriptor or memory exhaustion).")
        static let inboundTraffic = d("inbound_traffic", "bytes_total", "Bytes through an inbound (VMess framing included), by direction.")
        static let inboundAccepted = d("inbound_connections_accepted", "total", "Connections accepted by an inbound.")
        static let inboundActive = d("inbound_connections", "active", "Connections open on an inbound.")
        static let outboundTraffic = d("outbound_traffic", "bytes_total", "Bytes through an outbound, by direction.")
        static let outboundOpened = d("outbound_connections_opened", "total", "Connections opened through an outbound.")
        static let outboundActive = d("outbound_connections", "active", "Connections open through an outbound.")
        static let userTraffic = d("user_traffic", "bytes_total", "Payload bytes of a user, by direction (userLabels).")
        static let userAccepted = d("user_connections_accepted", "total", "Connections a user opened (userLabels).")
        static let userActive = d("user_connections", "active", "Connections of a user open now (userLabels).")
        static let rejections = d("handshake_rejections", "total", "Handshakes rejected, by reason.")
        static let dropped = d("dropped", "total", "Things dropped at a bound, by bound (deploy/RUNBOOK.md Bounds).")
        static let workers = d("workers", "", "Worker processes, by state (starting, ready, draining).")
        static let generation = d("generation", "", "The serving generation (each reload starts a new one).")
        static let drainingConnections = d("draining_connections", "", "Connections still open on draining workers.")
        static let workerConnections = d("worker_connections", "", "Connections open on a worker.")
        static let lag = d("worker_event_loop_lag", "seconds", "How late the worker's event loop ran its last probe task.")
        static let lagMax = d("worker_event_loop_lag_max", "seconds", "The largest event-loop lag of the worker since it started.")
    }

    private func counter(_ family: MetricNameDescriptor, _ labels: [(String, String)], _ value: UInt64) {
        let c = registry.makeCounter(descriptor: family, labels: labels)
        c.reset()
        c.increment(by: Int64(clamping: value))
        counters[ObjectIdentifier(c)] = c
    }

    private func gauge(_ family: MetricNameDescriptor, _ labels: [(String, String)], _ value: Double) {
        let g = registry.makeGauge(descriptor: family, labels: labels)
        g.set(value)
        gauges[ObjectIdentifier(g)] = g
    }

    private func apply(_ s: MetricsSample) {
        counters = [:]
        gauges = [:]
        counter(Family.accepted, [], s.accepted)
        counter(Family.traffic, [("direction", "up")], s.bytesUp)
        counter(Family.traffic, [("direction", "down")], s.bytesDown)
        counter(Family.acceptErrors, [], s.acceptErrors)
        gauge(Family.active, [], Double(s.workers.reduce(UInt64(0)) { $0 &+ $1.connections }))

        // Per tag and user. Names cut to the entry's 64 bytes can collide: their values add up.
        var tagged: [MetricName.Kind: [String: (up: UInt64, down: UInt64, opened: UInt64, closed: UInt64)]] = [:]
        for entry in s.metrics {
            guard let (kind, name) = MetricName.parse(entry.name) else { continue }
            if kind == .user && !s.userLabels { continue }
            var v = tagged[kind, default: [:]][name] ?? (0, 0, 0, 0)
            v.up &+= entry.value0
            v.down &+= entry.value1
            v.opened &+= entry.value2
            v.closed &+= entry.value3
            tagged[kind, default: [:]][name] = v
        }
        for (name, v) in tagged[.inbound] ?? [:] {
            counter(Family.inboundTraffic, [("inbound", name), ("direction", "up")], v.up)
            counter(Family.inboundTraffic, [("inbound", name), ("direction", "down")], v.down)
            counter(Family.inboundAccepted, [("inbound", name)], v.opened)
            gauge(Family.inboundActive, [("inbound", name)], Self.active(v.opened, v.closed))
        }
        for (name, v) in tagged[.outbound] ?? [:] {
            counter(Family.outboundTraffic, [("outbound", name), ("direction", "up")], v.up)
            counter(Family.outboundTraffic, [("outbound", name), ("direction", "down")], v.down)
            counter(Family.outboundOpened, [("outbound", name)], v.opened)
            gauge(Family.outboundActive, [("outbound", name)], Self.active(v.opened, v.closed))
        }
        if s.userLabels {
            for (name, v) in tagged[.user] ?? [:] {
                counter(Family.userAccepted, [("user", name)], v.opened)
                gauge(Family.userActive, [("user", name)], Self.active(v.opened, v.closed))
            }
            for entry in s.users {
                counter(Family.userTraffic, [("user", entry.name), ("direction", "up")], entry.value0)
                counter(Family.userTraffic, [("user", entry.name), ("direction", "down")], entry.value1)
            }
        }

        var dropped: [String: UInt64] = [:]
        var rejected: [String: UInt64] = [:]
        for entry in s.reasons {
            if entry.name.hasPrefix("dropped_") {
                dropped[String(entry.name.dropFirst("dropped_".count)), default: 0] &+= entry.value0
            } else {
                rejected[entry.name, default: 0] &+= entry.value0
            }
        }
        if s.replayEvictions > 0 { dropped["replay_filter_evictions", default: 0] &+= s.replayEvictions }
        for (reason, n) in rejected { counter(Family.rejections, [("reason", reason)], n) }
        for (bound, n) in dropped { counter(Family.dropped, [("bound", bound)], n) }

        gauge(Family.generation, [], Double(s.generation))
        var states = ["starting": 0, "ready": 0, "draining": 0]
        var draining: UInt64 = 0
        for w in s.workers {
            states[w.state, default: 0] += 1
            if w.state == "draining" { draining &+= w.connections }
            let labels = [("worker", "\(w.index)"), ("generation", "\(w.generation)")]
            gauge(Family.workerConnections, labels, Double(w.connections))
            gauge(Family.lag, labels, Double(w.lag.lastMicroseconds) / 1e6)
            gauge(Family.lagMax, labels, Double(w.lag.maxMicroseconds) / 1e6)
        }
        for (state, n) in states { gauge(Family.workers, [("state", state)], Double(n)) }
        gauge(Family.drainingConnections, [], Double(draining))

        for (id, c) in previousCounters where counters[id] == nil { registry.unregisterCounter(c) }
        for (id, g) in previousGauges where gauges[id] == nil { registry.unregisterGauge(g) }
        previousCounters = counters
        previousGauges = gauges
    }

    /// Opened minus closed; the two are published at different moments of a second, so a scrape
    /// can see a close before its open: never below zero.
    static func active(_ opened: UInt64, _ closed: UInt64) -> Double { opened > closed ? Double(opened - closed) : 0 }

    // MARK: the skew histogram

    static let skewName = "vmessd_handshake_clock_skew_seconds"

    private func appendSkew(_ snapshots: [SkewHistogram.Snapshot], to out: inout [UInt8]) {
        var text = "# HELP \(Self.skewName) |AuthID time - server time| of AEAD handshakes (accepted within 120 s; rejected: a user's key matched, the time did not).\n"
        text += "# TYPE \(Self.skewName) histogram\n"
        for outcome in SkewHistogram.Outcome.allCases where outcome.rawValue < snapshots.count {
            let s = snapshots[outcome.rawValue]
            let label = "outcome=\"\(outcome.label)\""
            var cumulative: UInt64 = 0
            for (i, n) in s.buckets.enumerated() {
                cumulative &+= n
                let le = i < SkewHistogram.bounds.count ? "\(SkewHistogram.bounds[i])" : "+Inf"
                text += "\(Self.skewName)_bucket{\(label),le=\"\(le)\"} \(cumulative)\n"
            }
            // The count is the +Inf bucket (the buckets and the count word are added separately).
            text += "\(Self.skewName)_sum{\(label)} \(s.sum)\n"
            text += "\(Self.skewName)_count{\(label)} \(cumulative)\n"
        }
        out += Array(text.utf8)
    }
}
