// UserLimitTable through two mappings of one region (two workers' view): connection and source
// address limits that hold across workers, a dead worker's share gone with its slot, addresses that
// lapse without re-stamping, and the rate clock.

import Foundation
import Glibc
import Shared
import XCTest

final class UserLimitTableTests: XCTestCase {
    static let parameters = SharedLayout.Parameters(slotCount: 4, userCapacity: 8, reasonCapacity: 8,
                                                    replayStripes: 1, replayBucketsPerStripe: 1, replayBucketSlots: 1)

    private var region: SharedRegion!
    private var other: SharedRegion!
    private var slots: WorkerSlots!
    private var a = 0, b = 0

    override func setUpWithError() throws {
        region = try SharedRegion.create(Self.parameters)
        let copy = dup(region.descriptor!)
        defer { close(copy) }
        other = try SharedRegion.attach(fd: copy)
        slots = WorkerSlots(region: region)
        a = try XCTUnwrap(slots.claim(pid: 100, generation: 1, index: 0, startedAt: 0))
        b = try XCTUnwrap(slots.claim(pid: 101, generation: 1, index: 1, startedAt: 0))
    }

    private func source(_ last: UInt8) -> SourceKey { SourceKey(address: [10, 0, 0, last])! }

    private func limits(connections: Int = 0, sourceIPs: Int = 0) -> EffectiveUserLimits {
        var l = EffectiveUserLimits()
        l.connections = connections
        l.sourceIPs = sourceIPs
        return l
    }

    func testConnectionLimitHoldsAcrossWorkersAndDiesWithTheWorker() {
        let workerA = UserLimitTable(region: region), workerB = UserLimitTable(region: other)
        let three = limits(connections: 3)
        XCTAssertEqual(workerA.admit(user: 2, slot: a, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .admitted(sourceSlot: nil))
        XCTAssertEqual(workerB.admit(user: 2, slot: b, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .admitted(sourceSlot: nil))
        XCTAssertEqual(workerB.admit(user: 2, slot: b, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .admitted(sourceSlot: nil))
        XCTAssertEqual(workerA.admit(user: 2, slot: a, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .refused(.connections))
        // Another user is not affected.
        XCTAssertEqual(workerA.admit(user: 3, slot: a, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .admitted(sourceSlot: nil))
        XCTAssertEqual(workerA.openConnections(user: 2), 3)
        workerA.release(user: 2, slot: a)
        XCTAssertEqual(workerB.openConnections(user: 2), 2)
        XCTAssertEqual(workerA.admit(user: 2, slot: a, source: nil, limits: three, trackSource: false, nowMilliseconds: 1000), .admitted(sourceSlot: nil))
        // Worker B dies: its two connections go with its slot, and its successor starts from zero.
        slots.release(b)
        XCTAssertEqual(workerA.openConnections(user: 2), 1)
        let successor = slots.claim(pid: 102, generation: 1, index: 1, startedAt: 0)
        XCTAssertEqual(successor, b)
        XCTAssertEqual(workerA.openConnections(user: 2), 1)
    }

    func testSourceLimitAcrossWorkersWithLeases() {
        let workerA = UserLimitTable(region: region), workerB = UserLimitTable(region: other)
        let two = limits(sourceIPs: 2)
        guard case .admitted(let first?) = workerA.admit(user: 1, slot: a, source: source(1), limits: two, trackSource: false, nowMilliseconds: 10_000),
              case .admitted(let second?) = workerB.admit(user: 1, slot: b, source: source(2), limits: two, trackSource: false, nowMilliseconds: 10_000)
        else { return XCTFail("the first two addresses are admitted and kept") }
        XCTAssertNotEqual(first, second)
        // The same address again, from either worker: no new place needed.
        XCTAssertEqual(workerB.admit(user: 1, slot: b, source: source(1), limits: two, trackSource: false, nowMilliseconds: 10_500), .admitted(sourceSlot: first))
        XCTAssertEqual(workerA.admit(user: 1, slot: a, source: source(3), limits: two, trackSource: false, nowMilliseconds: 11_000), .refused(.sourceIPs))
        XCTAssertEqual(Set(workerA.sources(user: 1, nowMilliseconds: 11_000).map(\.source)), [source(1), source(2)])
        // Worker A keeps address 1 stamped; address 2's connections ended, so nobody re-stamps it, and
        // after the lease a third address fits.
        XCTAssertEqual(workerA.refresh([(user: 1, source: source(1), slot: first)], nowMilliseconds: 12_000), [first])
        XCTAssertEqual(workerA.admit(user: 1, slot: a, source: source(3), limits: two, trackSource: false, nowMilliseconds: 12_900), .refused(.sourceIPs))
        guard case .admitted(let third?) = workerA.admit(user: 1, slot: a, source: source(3), limits: two, trackSource: false,
                                                          nowMilliseconds: 10_000 + UserLimitTable.sourceLease + 500)
        else { return XCTFail("a lapsed address frees its place") }
        XCTAssertEqual(third, second, "the lapsed slot is reused")
        XCTAssertEqual(Set(workerB.sources(user: 1, nowMilliseconds: 13_500).map(\.source)), [source(1), source(3)])
        // A stamp a moment ahead of this process's clock still counts as present.
        XCTAssertEqual(workerB.sources(user: 1, nowMilliseconds: 11_999).count, 2)
    }

    func testSixteenAddressesAtMostAndTrackingWithoutALimit() {
        let table = UserLimitTable(region: region)
        for i in 0..<SharedLayout.limitSourceSlots {
            guard case .admitted(.some) = table.admit(user: 0, slot: a, source: source(UInt8(i)), limits: limits(),
                                                       trackSource: true, nowMilliseconds: 5000) else { return XCTFail("address \(i)") }
        }
        // Tracking alone never refuses: the seventeenth is admitted without a place.
        XCTAssertEqual(table.admit(user: 0, slot: a, source: source(200), limits: limits(), trackSource: true, nowMilliseconds: 5000),
                       .admitted(sourceSlot: nil))
        XCTAssertEqual(table.sources(user: 0, nowMilliseconds: 5000).count, SharedLayout.limitSourceSlots)
    }

    func testRateClockSharedByWorkers() {
        let workerA = UserLimitTable(region: region), workerB = UserLimitTable(region: other)
        let rate = 1_000_000  // 1 MB/s: 1 µs per byte
        let t0: UInt64 = 1_000_000_000_000
        // The burst (100 kB) goes at once; past it every byte costs a µs, whichever worker moves it.
        XCTAssertEqual(workerA.take(user: 4, uplink: false, bytes: 100_000, rate: rate, burst: 100_000, nowNanoseconds: t0), 0)
        XCTAssertEqual(workerB.take(user: 4, uplink: false, bytes: 50_000, rate: rate, burst: 100_000, nowNanoseconds: t0), 50_000_000)
        XCTAssertEqual(workerA.take(user: 4, uplink: false, bytes: 50_000, rate: rate, burst: 100_000, nowNanoseconds: t0), 100_000_000)
        // The other direction and another user have clocks of their own.
        XCTAssertEqual(workerA.take(user: 4, uplink: true, bytes: 100_000, rate: rate, burst: 100_000, nowNanoseconds: t0), 0)
        XCTAssertEqual(workerA.take(user: 5, uplink: false, bytes: 100_000, rate: rate, burst: 100_000, nowNanoseconds: t0), 0)
        // Time pays the debt back; a quiet spell gives the burst again, never more.
        XCTAssertEqual(workerB.take(user: 4, uplink: false, bytes: 1, rate: rate, burst: 100_000, nowNanoseconds: t0 + 100_000_000), 1000)
        XCTAssertEqual(workerB.take(user: 4, uplink: false, bytes: 100_000, rate: rate, burst: 100_000, nowNanoseconds: t0 + 10_000_000_000), 0)
        XCTAssertEqual(workerB.take(user: 4, uplink: false, bytes: 1000, rate: rate, burst: 100_000, nowNanoseconds: t0 + 10_000_000_000), 1_000_000)
        // Huge numbers saturate instead of trapping.
        XCTAssertGreaterThan(workerA.take(user: 6, uplink: true, bytes: Int.max, rate: 1, burst: 2048, nowNanoseconds: t0), 0)
    }
}
