// The shared-memory region: the replay filter seen through two separate mappings of one memfd (what
// two worker processes have), under concurrent inserts, across epochs, bounded; worker slots and the
// named counter tables.

import Foundation
import Glibc
@testable import Shared
import XCTest

final class SharedMemoryTests: XCTestCase {
    static let small = SharedLayout.Parameters(slotCount: 8, userCapacity: 16, reasonCapacity: 8,
                                               replayStripes: 4, replayBucketsPerStripe: 8, replayBucketSlots: 4)

    private func key(_ n: UInt64) -> AuthIDKey { AuthIDKey(hi: n &* 0x9E37_79B9_7F4A_7C15, lo: ~n) }

    /// A second, independent mapping of the same memfd: another virtual address for the same pages,
    /// exactly what a second worker process sees.
    private func secondMapping(_ region: SharedRegion) throws -> SharedRegion {
        let copy = dup(region.descriptor!)
        defer { close(copy) }
        return try SharedRegion.attach(fd: copy)
    }

    func testLayoutIsAlignedAndConsistent() throws {
        let layout = try SharedLayout(.init())
        for offset in [layout.slotsOffset, layout.usersOffset, layout.reasonsOffset, layout.replayOffset, layout.replayStripeStride] {
            XCTAssertEqual(offset % 64, 0)
        }
        XCTAssertEqual(layout.totalSize % 4096, 0)
        XCTAssertEqual(layout.parameters.replayCapacity, 1 << 20)
        XCTAssertGreaterThan(layout.totalSize, layout.stripeOffset(63) + layout.replayStripeStride - 1)
        XCTAssertThrowsError(try SharedLayout(.init(slotCount: 0, userCapacity: 1, reasonCapacity: 1, replayStripes: 1,
                                                    replayBucketsPerStripe: 1, replayBucketSlots: 1)))
        XCTAssertThrowsError(try SharedLayout(.init(slotCount: 1, userCapacity: 1, reasonCapacity: 1, replayStripes: 1,
                                                    replayBucketsPerStripe: 12, replayBucketSlots: 1)), "stripes double: a power of two")
    }

    func testAttachRefusesSomethingElse() throws {
        let fd = try Posix.makeMemfd(name: "not-a-region", contents: [UInt8](repeating: 7, count: 8192))
        defer { close(fd) }
        XCTAssertThrowsError(try SharedRegion.attach(fd: fd)) { error in
            XCTAssertEqual(error as? SharedMemoryError, .notARegion("bad magic"))
        }
    }

    func testReplayIsSeenThroughAnotherMapping() throws {
        // Buckets deep enough that 20 randomly seeded AuthIDs never fill one (a full bucket evicts).
        let roomy = SharedLayout.Parameters(slotCount: 8, userCapacity: 16, reasonCapacity: 8,
                                            replayStripes: 4, replayBucketsPerStripe: 8, replayBucketSlots: 32)
        let region = try SharedRegion.create(roomy)
        let other = try secondMapping(region)
        XCTAssertNotEqual(region.base, other.base)
        let a = SharedReplayFilter(region: region)
        let b = SharedReplayFilter(region: other)
        let now: Int64 = 1_700_000_000
        for n in 0..<20 as Range<UInt64> {
            XCTAssertTrue(a.insert(key(n), now: now), "new AuthID \(n)")
            XCTAssertFalse(b.insert(key(n), now: now + 1), "replay of \(n) through the other mapping")
            XCTAssertFalse(a.insert(key(n), now: now + 2), "replay of \(n) through the first mapping")
        }
        XCTAssertEqual(a.liveCount(now: now), 20)
    }

    func testExactMatchOnAllSixteenBytes() throws {
        let filter = SharedReplayFilter(region: try SharedRegion.create(Self.small))
        let base = AuthIDKey(hi: 0x1111_2222_3333_4444, lo: 0x5555_6666_7777_8888)
        XCTAssertTrue(filter.insert(base, now: 0))
        XCTAssertTrue(filter.insert(AuthIDKey(hi: base.hi, lo: base.lo ^ 1), now: 0))
        XCTAssertTrue(filter.insert(AuthIDKey(hi: base.hi ^ (1 << 63), lo: base.lo), now: 0))
        XCTAssertTrue(filter.insert(AuthIDKey(hi: 0, lo: 0), now: 0), "an all-zero AuthID is an ordinary value")
        XCTAssertFalse(filter.insert(AuthIDKey(hi: 0, lo: 0), now: 0))
        XCTAssertFalse(filter.insert(base, now: 0))
    }

    /// Two generations of 120 s: remembered through the next epoch, forgotten after it.
    func testGenerations() throws {
        let filter = SharedReplayFilter(region: try SharedRegion.create(Self.small))
        let t0: Int64 = 1_700_000_040 // inside an epoch (epochs start at multiples of 120)
        let epochStart = t0 / 120 * 120
        XCTAssertTrue(filter.insert(key(1), now: t0))
        XCTAssertFalse(filter.insert(key(1), now: epochStart + 119))
        XCTAssertFalse(filter.insert(key(1), now: epochStart + 120), "previous generation still remembered")
        XCTAssertFalse(filter.insert(key(1), now: epochStart + 239))
        XCTAssertTrue(filter.insert(key(1), now: epochStart + 240), "two generations later it is forgotten")
        // A value seen at the very end of an epoch is kept at least 120 s.
        XCTAssertTrue(filter.insert(key(2), now: epochStart + 119))
        XCTAssertFalse(filter.insert(key(2), now: epochStart + 119 + 120))
    }

    /// Bounded: a full bucket evicts its oldest entry (counted) rather than turning a genuine user
    /// away, and stale entries are reused.
    func testCapacityIsBoundedAndStaleEntriesAreReused() throws {
        let tiny = SharedLayout.Parameters(slotCount: 1, userCapacity: 1, reasonCapacity: 1,
                                           replayStripes: 1, replayBucketsPerStripe: 1, replayBucketSlots: 4)
        let region = try SharedRegion.create(tiny)
        let filter = SharedReplayFilter(region: region)
        for n in 0..<4 as Range<UInt64> { XCTAssertTrue(filter.insert(key(n), now: 0)) }
        XCTAssertTrue(filter.insert(key(99), now: 60), "full: the oldest entry makes room")
        XCTAssertEqual(region.replayBucketOverflows, 1)
        XCTAssertFalse(filter.insert(key(99), now: 60), "the new entry is remembered")
        XCTAssertEqual(filter.liveCount(now: 60), 4)
        for n in 100..<104 as Range<UInt64> { XCTAssertTrue(filter.insert(key(n), now: 240), "stale entries are free again") }
        XCTAssertEqual(filter.liveCount(now: 240), 4)
    }

    /// A stripe starts with one bucket and doubles only when a bucket fills with live entries; every
    /// AuthID recorded before, during and after the doublings is still caught, and nothing is evicted
    /// while there is room to grow.
    func testStripesGrowWithLoadAndForgetNothing() throws {
        let region = try SharedRegion.create(.init(slotCount: 1, userCapacity: 1, reasonCapacity: 1,
                                                   replayStripes: 2, replayBucketsPerStripe: 64, replayBucketSlots: 16))
        let filter = SharedReplayFilter(region: region)
        XCTAssertEqual(filter.level(ofStripe: 0), 0)
        for n in 0..<20 as Range<UInt64> { XCTAssertTrue(filter.insert(key(n), now: 1000)) }
        XCTAssertLessThanOrEqual(filter.level(ofStripe: 0) + filter.level(ofStripe: 1), 2, "20 entries need hardly any doubling")
        for n in 20..<600 as Range<UInt64> {
            XCTAssertTrue(filter.insert(key(n), now: 1000))
            XCTAssertFalse(filter.insert(key(n / 2), now: 1001), "replay of \(n / 2) after the table grew")
        }
        for n in 0..<600 as Range<UInt64> { XCTAssertFalse(filter.insert(key(n), now: 1002), "replay of \(n)") }
        XCTAssertEqual(filter.liveCount(now: 1002), 600)
        XCTAssertEqual(region.replayBucketOverflows, 0, "room to grow: nothing evicted")
        for stripe in 0..<2 {
            XCTAssertGreaterThanOrEqual(filter.level(ofStripe: stripe), 3, "~300 live entries do not fit in 8 buckets of 16")
            XCTAssertLessThanOrEqual(filter.level(ofStripe: stripe), 6)
        }
    }

    /// A doubling is a pure re-hash: entries whose epoch has passed move with the rest, so that if
    /// the clock steps back they are caught exactly as they would have been in an undoubled table.
    func testDoublingKeepsEntriesOfEveryEpoch() throws {
        let region = try SharedRegion.create(.init(slotCount: 1, userCapacity: 1, reasonCapacity: 1,
                                                   replayStripes: 1, replayBucketsPerStripe: 64, replayBucketSlots: 4))
        let filter = SharedReplayFilter(region: region)
        // Keys sorted by their bucket number's two low bits (the seed is random: pick by hashing).
        var byBits: [[AuthIDKey]] = [[], [], [], []]
        var n: UInt64 = 0
        while byBits.contains(where: { $0.count < 6 }) {
            let k = key(n)
            byBits[Int(filter.position(hi: k.hi, lo: k.lo).bucketBits & 3)].append(k)
            n += 1
        }
        let t0: Int64 = 1_000_000_080
        // Level 0, one bucket: four keys of bucket 3-to-be fill it; a fifth doubles the stripe.
        for k in byBits[3].prefix(4) { XCTAssertTrue(filter.insert(k, now: t0)) }
        XCTAssertTrue(filter.insert(byBits[0][0], now: t0))
        XCTAssertEqual(filter.level(ofStripe: 0), 1)
        // Four epochs later those are dead. Bucket 0 fills with live keys (the first reuses the dead
        // key's slot) and a fifth doubles the stripe again, moving the dead keys from bucket 1 to 3.
        for k in [byBits[0][1], byBits[0][2], byBits[2][0], byBits[2][1], byBits[2][2]] {
            XCTAssertTrue(filter.insert(k, now: t0 + 480))
        }
        XCTAssertEqual(filter.level(ofStripe: 0), 2)
        XCTAssertEqual(region.replayBucketOverflows, 0)
        // The clock steps back: the dead keys are live again, and found where the re-hash put them.
        for k in byBits[3].prefix(4) { XCTAssertFalse(filter.insert(k, now: t0)) }
    }

    /// What a light load touches: with the default 24 MiB table, 2,000 AuthIDs leave at most a few
    /// pages per stripe resident (random buckets across the whole table touched about 1,900).
    func testResidentPagesFollowLiveEntries() throws {
        let region = try SharedRegion.create()
        let filter = SharedReplayFilter(region: region)
        for n in 0..<2000 as Range<UInt64> { XCTAssertTrue(filter.insert(key(n), now: 1000)) }
        let layout = region.layout
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = layout.replayOffset / page * page
        let end = layout.stripeOffset(layout.parameters.replayStripes)
        let pages = (end - start + page - 1) / page
        var resident = [UInt8](repeating: 0, count: pages)
        XCTAssertEqual(mincore(region.base + start, end - start, &resident), 0)
        let touched = resident.filter { $0 & 1 != 0 }.count
        XCTAssertLessThanOrEqual(touched, 2 * layout.parameters.replayStripes, "\(touched) of \(pages) pages resident")
        XCTAssertEqual(filter.liveCount(now: 1000), 2000)
    }

    /// Threads hammering one set of AuthIDs through their own mappings: each AuthID is accepted
    /// exactly once, whoever gets there first.
    func testConcurrentInsertsAcceptEachAuthIDExactlyOnce() throws {
        let region = try SharedRegion.create(.init(slotCount: 1, userCapacity: 1, reasonCapacity: 1,
                                                   replayStripes: 8, replayBucketsPerStripe: 256, replayBucketSlots: 16))
        let mappings = try (0..<4).map { _ in try secondMapping(region) }
        let ids = (0..<4000 as Range<UInt64>).map { key($0) }
        let lock = NSLock()
        var accepted = 0
        DispatchQueue.concurrentPerform(iterations: mappings.count) { worker in
            let filter = SharedReplayFilter(region: mappings[worker])
            var mine = 0
            // Each thread walks the list from a different start, so they collide constantly.
            for i in 0..<ids.count where filter.insert(ids[(i + worker * 1000) % ids.count], now: 1000) { mine += 1 }
            lock.lock(); accepted += mine; lock.unlock()
        }
        XCTAssertEqual(accepted, ids.count)
        XCTAssertEqual(SharedReplayFilter(region: region).liveCount(now: 1000), ids.count)
    }

    func testWorkerSlots() throws {
        let region = try SharedRegion.create(Self.small)
        let slots = WorkerSlots(region: region)
        let worker = WorkerSlots(region: try secondMapping(region))
        let slot = try XCTUnwrap(slots.claim(pid: 0, generation: 3, index: 1, startedAt: 1234))
        slots.setPID(slot, 777)
        var counters = WorkerSlotCounters()
        counters.accepted = 10
        counters.open = 2
        counters.bytesUp = 1000
        counters.bytesDown = 5000
        counters.rejected = 3
        worker.publish(slot, counters, nowMilliseconds: 99)
        let seen = slots.read(slot)
        XCTAssertEqual(seen.pid, 777)
        XCTAssertEqual(seen.generation, 3)
        XCTAssertEqual(seen.index, 1)
        XCTAssertEqual(seen.accepted, 10)
        XCTAssertEqual(seen.open, 2)
        XCTAssertEqual(seen.bytesDown, 5000)
        XCTAssertEqual(seen.updatedAtMilliseconds, 99)
        // Every slot can be claimed once; a released one is zeroed for its next owner.
        var claimed = [slot]
        while let next = slots.claim(pid: 1, generation: 1, index: 0, startedAt: 0) { claimed.append(next) }
        XCTAssertEqual(Set(claimed).count, Self.small.slotCount)
        XCTAssertEqual(slots.release(slot).accepted, 10)
        XCTAssertEqual(slots.claim(pid: 2, generation: 4, index: 0, startedAt: 0), slot)
        XCTAssertEqual(slots.read(slot).accepted, 0)
    }

    func testCounterTablesAddAcrossMappings() throws {
        let region = try SharedRegion.create(Self.small)
        let users = CounterTable(region: region, kind: .users)
        let otherUsers = CounterTable(region: try secondMapping(region), kind: .users)
        let long = String(repeating: "x", count: 90) + "@example.com"
        let alice = try XCTUnwrap(users.index(of: "alice@example.com"))
        XCTAssertEqual(otherUsers.index(of: "alice@example.com"), alice, "the same entry from another mapping")
        users.add(alice, value0: 100, value1: 1)
        otherUsers.add(alice, value0: 50)
        let longIndex = try XCTUnwrap(otherUsers.index(of: long))
        users.add(longIndex, value0: 0, value1: 7)
        let entries = users.entries()
        XCTAssertEqual(entries.count, 2)
        let values = entries.map { [$0.name, "\($0.value0)", "\($0.value1)"] }
        XCTAssertTrue(values.contains(["alice@example.com", "150", "1"]), "\(values)")
        XCTAssertTrue(values.contains([String(long.prefix(80)), "0", "7"]), "\(values)")
        // A name differing after the stored 80 bytes is still its own entry.
        XCTAssertNotEqual(users.index(of: long + "!"), longIndex)
        // Full: nil, counted as an overflow; existing entries keep working.
        var extra = 0
        while users.index(of: "user\(extra)") != nil { extra += 1 }
        XCTAssertEqual(extra, Self.small.userCapacity - 3)
        XCTAssertEqual(region.counterOverflows, 1)
        XCTAssertEqual(users.index(of: "alice@example.com"), alice)
        // The reasons table is separate.
        XCTAssertEqual(CounterTable(region: region, kind: .reasons).entries(), [])
    }

    /// The API's named counters: whole names up to StatName.maximumBytes, seen through another
    /// mapping, and read-and-reset in one step.
    func testStatTableKeepsWholeNamesAndResets() throws {
        let region = try SharedRegion.create(Self.small)
        let worker = CounterTable(region: try secondMapping(region), kind: .stats)
        let supervisor = CounterTable(region: region, kind: .stats)
        let long = StatName.outbound(String(repeating: "t", count: StatName.maximumPartBytes), .downlink)
        XCTAssertEqual(long.utf8.count, StatName.maximumBytes)
        let a = try XCTUnwrap(worker.index(of: long))
        let b = try XCTUnwrap(worker.index(of: "user>>>bob>>>traffic>>>uplink"))
        worker.add(a, value0: 1000)
        worker.add(b, value0: 7)
        XCTAssertEqual(supervisor.existingIndex(of: long), a)
        XCTAssertNil(supervisor.existingIndex(of: "user>>>nobody>>>traffic>>>uplink"))
        XCTAssertEqual(Set(supervisor.entries().map(\.name)), [long, "user>>>bob>>>traffic>>>uplink"])
        XCTAssertEqual(supervisor.takeValue0(a), 1000)
        worker.add(a, value0: 5)
        XCTAssertEqual(supervisor.entry(at: a).value0, 5, "counts after a reset are kept")
        XCTAssertEqual(supervisor.entry(at: b).value0, 7)
    }
}
