// The worker's side of the API's named counters (StatName): plain event-loop-confined integers that
// the data path bumps, which CounterPublisher moves into the shared table once a second.
//
// A connection resolves its counters once (a dictionary look-up by name at the handshake) and then
// holds the objects: per chunk it costs one add through a reference, no hashing, no atomics.

import Shared

/// One named counter of this worker. Event-loop confined.
final class StatCounter {
    let name: String
    /// Counted in this worker since it started.
    var value = 0
    /// Already added to the shared table.
    var published = 0
    /// The shared table's entry (nil: not looked up yet; .some(nil): the table was full).
    var tableIndex: Int??

    init(name: String) { self.name = name }
}

final class StatRegistry {
    private(set) var counters: [StatCounter] = []
    private var byName: [String: StatCounter] = [:]

    /// The counter called `name`, created on first use; nil for nil (a counter the config does not ask for).
    func counter(_ name: String?) -> StatCounter? {
        guard let name else { return nil }
        if let existing = byName[name] { return existing }
        let created = StatCounter(name: name)
        byName[name] = created
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

    func inboundMeter(_ switches: StatSwitches, tag: String?) -> TrafficMeter {
        TrafficMeter(up: counter(switches.inbound(tag: tag, .uplink)), down: counter(switches.inbound(tag: tag, .downlink)))
    }

    func outboundMeter(_ switches: StatSwitches, tag: String?) -> TrafficMeter {
        TrafficMeter(up: counter(switches.outbound(tag: tag, .uplink)), down: counter(switches.outbound(tag: tag, .downlink)))
    }
}
