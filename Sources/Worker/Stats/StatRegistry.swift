// The worker's side of the API's named counters (StatName) and of the Prometheus metrics' per-tag
// and per-user counters (MetricName): plain event-loop-confined integers that the data path bumps,
// which CounterPublisher moves into the shared tables once a second. One counter feeds both tables
// when both want the same count (an inbound's bytes), so the data path adds once.
//
// A connection resolves its counters once (a dictionary look-up by name at the handshake) and then
// holds the objects: per chunk it costs one add through a reference, no hashing, no atomics.

import Shared

/// Which value of which metrics-table entry a counter feeds.
struct MetricTarget: Hashable {
    var entry: String
    var value: MetricName.Value

    init(_ kind: MetricName.Kind, _ name: String, _ value: MetricName.Value) {
        entry = MetricName.entry(kind, name)
        self.value = value
    }
}

/// One counter of this worker. Event-loop confined.
final class StatCounter {
    /// The API's name (nil: the config keeps no API counter for it).
    let name: String?
    let metric: MetricTarget?
    /// Counted in this worker since it started.
    var value = 0
    /// Already added to the shared tables.
    var published = 0
    /// The shared tables' entries (nil: not looked up yet; .some(nil): the table was full).
    var tableIndex: Int??
    var metricIndex: Int??

    init(name: String?, metric: MetricTarget? = nil) {
        self.name = name
        self.metric = metric
    }
}

final class StatRegistry {
    private(set) var counters: [StatCounter] = []
    private var byName: [String: StatCounter] = [:]
    private var byMetric: [MetricTarget: StatCounter] = [:]
    /// Users' connection meters by user key: a handshake finds its user's with one look-up, without
    /// building the entry names again.
    private var userConnections: [String: ConnectionMeter] = [:]

    /// The counter called `name`, created on first use; nil for nil (a counter the config does not ask for).
    func counter(_ name: String?) -> StatCounter? { counter(name, metric: nil) }

    /// The counter feeding API counter `name` and/or metric `metric`, created on first use; nil when
    /// both are nil. A metric maps to one API name at most (both derive from the same tag or email).
    func counter(_ name: String?, metric: MetricTarget?) -> StatCounter? {
        if let metric, let existing = byMetric[metric] { return existing }
        if metric == nil, let name, let existing = byName[name] { return existing }
        guard name != nil || metric != nil else { return nil }
        let created = StatCounter(name: name, metric: metric)
        if let metric { byMetric[metric] = created } else if let name { byName[name] = created }
        counters.append(created)
        return created
    }
}

/// The up and down counters one connection adds to (either may be absent).
struct TrafficMeter {
    var up: StatCounter?
    var down: StatCounter?

    static let none = TrafficMeter()

    @inline(__always) func countUp(_ bytes: Int) { up?.value &+= bytes }
    @inline(__always) func countDown(_ bytes: Int) { down?.value &+= bytes }
}

extension StatRegistry {
    func userMeter(_ switches: StatSwitches, email: String?, level: Int) -> TrafficMeter {
        TrafficMeter(up: counter(switches.user(email: email, level: level, .uplink)),
                     down: counter(switches.user(email: email, level: level, .downlink)))
    }

    /// `name`: the inbound's metric label (its tag, else its JSON path): the metrics count every
    /// inbound; the API only tagged ones its switches ask for.
    func inboundMeter(_ switches: StatSwitches, tag: String?, name: String) -> TrafficMeter {
        TrafficMeter(up: counter(switches.inbound(tag: tag, .uplink), metric: MetricTarget(.inbound, name, .bytesUp)),
                     down: counter(switches.inbound(tag: tag, .downlink), metric: MetricTarget(.inbound, name, .bytesDown)))
    }

    /// Tagged outbounds only (an untagged one has no name a dashboard could keep).
    func outboundMeter(_ switches: StatSwitches, tag: String?) -> TrafficMeter {
        let metric = tag.flatMap { $0.isEmpty ? nil : $0 }
        return TrafficMeter(up: counter(switches.outbound(tag: tag, .uplink), metric: metric.map { MetricTarget(.outbound, $0, .bytesUp) }),
                            down: counter(switches.outbound(tag: tag, .downlink), metric: metric.map { MetricTarget(.outbound, $0, .bytesDown) }))
    }

    /// A user's connections (metrics only), once per accepted handshake.
    func userConnectionMeter(_ user: String) -> ConnectionMeter {
        if let known = userConnections[user] { return known }
        let meter = connectionMeter(.user, user)
        userConnections[user] = meter
        return meter
    }

    /// Connections opened and closed through an inbound, an outbound or by a user (metrics only).
    func connectionMeter(_ kind: MetricName.Kind, _ name: String) -> ConnectionMeter {
        ConnectionMeter(opened: counter(nil, metric: MetricTarget(kind, name, .accepted))!,
                        closed: counter(nil, metric: MetricTarget(kind, name, .closed))!)
    }
}

/// Opened and closed connections of one inbound, outbound or user: the metrics' accepted total and
/// (opened − closed) their active gauge. Each connection counts `open()` once and `close()` once.
struct ConnectionMeter {
    let opened: StatCounter
    let closed: StatCounter

    @inline(__always) func open() { opened.value &+= 1 }
    @inline(__always) func close() { closed.value &+= 1 }
}
