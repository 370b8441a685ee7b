// The metrics block of the shared-memory region (layout version 3): the per-tag and per-user
// counter table with four values, the clock-skew histogram, the per-slot event-loop lag, each
// written through one mapping (a worker) and read through another (the supervisor).

import Foundation
import Glibc
import Shared
import XCTest

final class SharedMemoryMetricsTests: XCTestCase {
    private func regionPair() throws -> (SharedRegion, SharedRegion) {
        let region = try SharedRegion.create(SharedMemoryTests.small)
        let copy = dup(region.descriptor!)
        defer { close(copy) }
        return (region, try SharedRegion.attach(fd: copy))
    }

    func testMetricsBlockComesAfterEverythingAndIsAligned() throws {
        let layout = try SharedLayout(.init())
        XCTAssertEqual(SharedLayout.version, 3)
        XCTAssertGreaterThanOrEqual(layout.skewOffset, layout.stripeOffset(63) + layout.replayStripeStride)
        for offset in [layout.skewOffset, layout.lagOffset, layout.metricsOffset] { XCTAssertEqual(offset % 64, 0) }
        XCTAssertLessThanOrEqual(layout.metricsOffset + layout.parameters.metricCapacity * 128, layout.totalSize)
        // The capacity travels in the header: a second mapping derives the same layout.
        let (region, other) = try regionPair()
        XCTAssertEqual(other.layout, region.layout)
    }

    func testMetricTableHasFourValuesAndAddsAcrossMappings() throws {
        let (region, other) = try regionPair()
        let worker = CounterTable(region: region, kind: .metrics)
        let supervisor = CounterTable(region: other, kind: .metrics)
        let inbound = try XCTUnwrap(worker.index(of: MetricName.entry(.inbound, "vmess-in")))
        worker.add(inbound, value: MetricName.Value.bytesUp.rawValue, 1000)
        worker.add(inbound, value: MetricName.Value.bytesDown.rawValue, 20)
        worker.add(inbound, value: MetricName.Value.accepted.rawValue, 3)
        worker.add(inbound, value: MetricName.Value.closed.rawValue, 2)
        let second = CounterTable(region: other, kind: .metrics)
        second.add(try XCTUnwrap(second.index(of: MetricName.entry(.inbound, "vmess-in"))), value: 2, 4)
        let entries = supervisor.entries()
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(entries[0].name, "inbound>>>vmess-in")
        XCTAssertEqual([entries[0].value0, entries[0].value1, entries[0].value2, entries[0].value3], [1000, 20, 7, 2])
        XCTAssertEqual(MetricName.parse(entries[0].name)?.kind, .inbound)
        XCTAssertEqual(MetricName.parse(entries[0].name)?.name, "vmess-in")
        XCTAssertNil(MetricName.parse("garbage"))
        // Names keep 64 bytes; the other tables are untouched.
        let long = String(repeating: "u", count: 100)
        let user = try XCTUnwrap(worker.index(of: MetricName.entry(.user, long)))
        XCTAssertEqual(supervisor.entry(at: user).name.utf8.count, 64)
        XCTAssertEqual(CounterTable(region: other, kind: .users).entries(), [])
    }

    func testSkewHistogramBucketsAndSums() throws {
        let (region, other) = try regionPair()
        XCTAssertEqual(SkewHistogram.bucket(0), 0)
        XCTAssertEqual(SkewHistogram.bucket(1), 0)
        XCTAssertEqual(SkewHistogram.bucket(2), 1)
        XCTAssertEqual(SkewHistogram.bucket(120), 6)
        XCTAssertEqual(SkewHistogram.bucket(121), 7)
        XCTAssertEqual(SkewHistogram.bucket(UInt64.max), SkewHistogram.bounds.count)

        var counts = SkewCounts()
        XCTAssertNil(counts.takeDelta(), "nothing recorded, nothing to publish")
        counts.record(-3)
        counts.record(0)
        counts.record(Int64.min)  // a peer's timestamp: must not trap
        let first = try XCTUnwrap(counts.takeDelta())
        XCTAssertEqual(first.count, 3)
        XCTAssertEqual(first.buckets[0], 1)
        XCTAssertEqual(first.buckets[2], 1)
        XCTAssertEqual(first.buckets[SkewHistogram.bounds.count], 1)
        SkewHistogram.add(first, outcome: .rejected, to: region)
        counts.record(100)
        let second = try XCTUnwrap(counts.takeDelta())
        XCTAssertEqual(second.count, 1, "only what came since the last publish")
        XCTAssertEqual(second.sum, 100)
        SkewHistogram.add(second, outcome: .accepted, to: region)

        let accepted = SkewHistogram.read(.accepted, from: other)
        XCTAssertEqual(accepted.count, 1)
        XCTAssertEqual(accepted.sum, 100)
        XCTAssertEqual(accepted.buckets[6], 1)
        let rejected = SkewHistogram.read(.rejected, from: other)
        XCTAssertEqual(rejected.count, 3)
        XCTAssertEqual(rejected.buckets.reduce(0, +), 3)
    }

    func testLagCellsPerSlotAreClearedForTheNextWorker() throws {
        let (region, other) = try regionPair()
        let supervisor = WorkerSlots(region: other)
        let slot = try XCTUnwrap(supervisor.claim(pid: 10, generation: 1, index: 0, startedAt: 0))
        var lag = WorkerLag()
        lag.lastMicroseconds = 1500
        lag.maxMicroseconds = 90_000
        lag.probes = 4
        WorkerSlots(region: region).publishLag(slot, lag)
        XCTAssertEqual(supervisor.lag(slot), lag)
        XCTAssertEqual(supervisor.lag(slot + 1), WorkerLag())
        supervisor.release(slot)
        let again = try XCTUnwrap(supervisor.claim(pid: 11, generation: 2, index: 0, startedAt: 0))
        XCTAssertEqual(again, slot)
        XCTAssertEqual(supervisor.lag(again), WorkerLag(), "a new worker does not inherit the last one's lag")
    }
}
