// The answer cache: TTLs honoured on a given clock, TTL 0 not stored, a fixed bound on entries with
// the oldest evicted first, and re-insertions that do not grow the bookkeeping.

import XCTest

@testable import Shared

final class DNSCacheTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    private func key(_ name: String, server: Int = 0) -> DNSCache.Key {
        DNSCache.Key(server: server, question: DNSQuestion(name, type: .a)!)
    }

    func testEntryLivesForItsTTL() {
        var cache = DNSCache(capacity: 8)
        cache.insert(key("a.example"), addresses: [[192, 0, 2, 1]], ttl: 30, now: 100 * second)
        XCTAssertEqual(cache.lookup(key("a.example"), now: 129 * second)?.addresses, [[192, 0, 2, 1]])
        XCTAssertNil(cache.lookup(key("a.example"), now: 130 * second))
        XCTAssertEqual(cache.count, 0, "an expired entry is dropped when found")
        XCTAssertNil(cache.lookup(key("a.example", server: 1), now: 100 * second), "answers are per server")
    }

    func testZeroTTLIsNotStoredAndHugeTTLIsCapped() {
        var cache = DNSCache(capacity: 8)
        cache.insert(key("a.example"), addresses: [[192, 0, 2, 1]], ttl: 0, now: 0)
        XCTAssertNil(cache.lookup(key("a.example"), now: 0))
        cache.insert(key("b.example"), addresses: [], rcode: .nameError, ttl: .max, now: 0)
        XCTAssertEqual(cache.lookup(key("b.example"), now: 0)?.addresses, [], "a negative answer is cached")
        XCTAssertEqual(cache.lookup(key("b.example"), now: 0)?.rcode, .nameError, "with its RCODE")
        XCTAssertNil(cache.lookup(key("b.example"), now: UInt64(DNSCache.maximumTTL) * second))
    }

    func testCapacityEvictsOldestInsertion() {
        var cache = DNSCache(capacity: 3)
        for name in ["a", "b", "c"] { cache.insert(key(name), addresses: [[1, 1, 1, 1]], ttl: 60, now: 0) }
        cache.insert(key("a"), addresses: [[2, 2, 2, 2]], ttl: 60, now: 0)  // refreshed: now the newest
        cache.insert(key("d"), addresses: [[4, 4, 4, 4]], ttl: 60, now: 0)
        XCTAssertEqual(cache.count, 3)
        XCTAssertNil(cache.lookup(key("b"), now: 0), "b was the oldest")
        XCTAssertEqual(cache.lookup(key("a"), now: 0)?.addresses, [[2, 2, 2, 2]])
        XCTAssertNotNil(cache.lookup(key("c"), now: 0))
        XCTAssertNotNil(cache.lookup(key("d"), now: 0))
    }

    func testManyDistinctNamesStayWithinCapacity() {
        var cache = DNSCache(capacity: 100)
        for i in 0..<10_000 { cache.insert(key("n\(i).example"), addresses: [], ttl: 60, now: 0) }
        XCTAssertEqual(cache.count, 100)
        XCTAssertNotNil(cache.lookup(key("n9999.example"), now: 0))
        XCTAssertNil(cache.lookup(key("n9899.example"), now: 0))
    }

    func testRepeatedReinsertionKeepsWorking() {
        var cache = DNSCache(capacity: 2)
        for i in 0..<10_000 { cache.insert(key("same.example"), addresses: [[UInt8(i & 0xFF), 0, 0, 1]], ttl: 60, now: 0) }
        cache.insert(key("other.example"), addresses: [], ttl: 60, now: 0)
        cache.insert(key("third.example"), addresses: [], ttl: 60, now: 0)
        XCTAssertEqual(cache.count, 2)
        XCTAssertNil(cache.lookup(key("same.example"), now: 0), "the oldest live entry went first")
    }
}
