// Copies the worker's counters into shared memory once a second (and once more before exit), where
// the supervisor reads them for STATUS= and `vmessd ctl status|stats`.
//
// The data path keeps counting in plain event-loop-confined fields (WorkerCounters: no atomics, no
// shared cache lines per chunk); this publisher turns them into
//   - the worker's slot: running totals, one writer, atomic stores;
//   - the shared per-user and per-reason tables: deltas since the last publish, atomic adds (several
//     workers count the same user);
//   - the metrics block: per-tag and per-user counters, the clock-skew histogram (deltas, atomic
//     adds) and this worker's event-loop lag (its own cell, stores).
// Cost: one pass over the users this worker has seen, per second. At most a second of counts is lost
// when a worker is killed.

import Foundation
import Shared

final class CounterPublisher {
    private let counters: WorkerCounters
    private let tracker: ConnectionTracker
    private let slots: WorkerSlots
    private let slot: Int
    /// Users' rows, shared with the user limiter (the same names).
    let users: CounterRows
    private let reasons: CounterRows
    private let stats: CounterTable
    private let metrics: CounterTable
    private let region: SharedRegion
    private var publishedUp: [String: Int] = [:]
    private var publishedDown: [String: Int] = [:]
    private var publishedRejected: [String: Int] = [:]
    private var publishedDropped: [String: Int] = [:]

    init(region: SharedRegion, slot: Int, counters: WorkerCounters, tracker: ConnectionTracker) {
        self.counters = counters
        self.tracker = tracker
        slots = WorkerSlots(region: region)
        self.slot = slot
        users = CounterRows(CounterTable(region: region, kind: .users))
        reasons = CounterRows(CounterTable(region: region, kind: .reasons))
        stats = CounterTable(region: region, kind: .stats)
        metrics = CounterTable(region: region, kind: .metrics)
        self.region = region
    }

    /// Call on the event loop.
    func publish() {
        var c = WorkerSlotCounters()
        c.accepted = tracker.accepted
        c.open = UInt64(max(0, tracker.open))
        c.bytesUp = UInt64(max(0, counters.bytesUp))
        c.bytesDown = UInt64(max(0, counters.bytesDown))
        c.rejected = UInt64(max(0, counters.rejected.values.reduce(0, +)))
        c.acceptErrors = tracker.acceptErrors
        slots.publish(slot, c, nowMilliseconds: UInt64(Date().timeIntervalSince1970 * 1000))

        for (user, total) in counters.perUserUp {
            let delta = total - publishedUp[user, default: 0]
            guard delta > 0 else { continue }
            if let index = users.row(user) { users.table.add(index, value0: UInt64(delta)) }
            publishedUp[user] = total
        }
        for (user, total) in counters.perUserDown {
            let delta = total - publishedDown[user, default: 0]
            guard delta > 0 else { continue }
            if let index = users.row(user) { users.table.add(index, value0: 0, value1: UInt64(delta)) }
            publishedDown[user] = total
        }
        publishReasons(counters.rejected, published: &publishedRejected, prefix: "")
        // Bounds hit share the reasons table, told apart by their prefix.
        let keptRefusals = KeptBytesBudget.worker.refusals
        if keptRefusals > 0 { counters.dropped[DropReason.keptOverBudget.rawValue] = keptRefusals }
        publishReasons(counters.dropped, published: &publishedDropped, prefix: "dropped_")
        for counter in counters.stats.counters {
            let delta = counter.value &- counter.published
            guard delta > 0 else { continue }
            if let name = counter.name {
                if counter.tableIndex == nil { counter.tableIndex = .some(stats.index(of: name)) }
                if case .some(.some(let index)) = counter.tableIndex { stats.add(index, value0: UInt64(delta)) }
            }
            if let metric = counter.metric {
                if counter.metricIndex == nil { counter.metricIndex = .some(metrics.index(of: metric.entry)) }
                if case .some(.some(let index)) = counter.metricIndex { metrics.add(index, value: metric.value.rawValue, UInt64(delta)) }
            }
            counter.published = counter.value
        }
        for outcome in SkewHistogram.Outcome.allCases {
            if let delta = counters.skew[outcome.rawValue].takeDelta() { SkewHistogram.add(delta, outcome: outcome, to: region) }
        }
        slots.publishLag(slot, counters.lag)
    }

    private func publishReasons(_ totals: [String: Int], published: inout [String: Int], prefix: String) {
        for (reason, total) in totals {
            let delta = total - published[reason, default: 0]
            guard delta > 0 else { continue }
            if let index = reasons.row(prefix + reason) { reasons.table.add(index, value0: UInt64(delta)) }
            published[reason] = total
        }
    }
}
