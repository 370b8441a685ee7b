// The clock skew of VMess AEAD handshakes (the AuthID's timestamp minus the server's clock), as a
// histogram in the metrics block of shared memory: workers count into plain local buckets per
// handshake (SkewCounts, no allocation, no atomics) and add the deltas here once a second; the
// supervisor reads it at scrape time. Two histograms: accepted handshakes (within ±120 s) and those
// rejected for their skew (a user's key opened the AuthID, its time was off: a client with a wrong
// clock, the commonest cause of "it does not connect").
//
//   outcome o at skewOffset + o × 128:   bucketCount words of counts (not cumulative; the last is
//   +Inf), then the sum of |skew| in seconds, then the count.

public enum SkewHistogram {
    public enum Outcome: Int, CaseIterable, Sendable {
        case accepted = 0, rejected = 1
        public var label: String { self == .accepted ? "accepted" : "rejected" }
    }

    /// Upper bounds (seconds of |skew|) of the finite buckets. 120 is the protocol's limit; past it
    /// only rejections land, and the matcher does not report skews beyond its loose window.
    public static let bounds: [UInt64] = [1, 2, 5, 10, 30, 60, 120, 300, 3600]
    /// Finite buckets plus +Inf.
    public static var bucketCount: Int { bounds.count + 1 }
    static let outcomeStride = 128
    static let blockSize = 512

    /// The bucket |skew| falls in (the last: +Inf).
    public static func bucket(_ magnitude: UInt64) -> Int {
        for (i, bound) in bounds.enumerated() where magnitude <= bound { return i }
        return bounds.count
    }

    public struct Snapshot: Equatable, Sendable {
        /// Per bucket, not cumulative (the last is +Inf).
        public var buckets: [UInt64]
        public var sum: UInt64
        public var count: UInt64
        public init(buckets: [UInt64] = Array(repeating: 0, count: SkewHistogram.bucketCount), sum: UInt64 = 0, count: UInt64 = 0) {
            self.buckets = buckets
            self.sum = sum
            self.count = count
        }
    }

    static func offset(_ region: SharedRegion, _ outcome: Outcome, word: Int) -> Int {
        region.layout.skewOffset + outcome.rawValue * outcomeStride + word * 8
    }

    /// Adds a worker's counts since its last publish (atomic adds: every worker adds here).
    public static func add(_ delta: Snapshot, outcome: Outcome, to region: SharedRegion) {
        for (i, n) in delta.buckets.enumerated() where n != 0 { region.add(offset(region, outcome, word: i), n) }
        if delta.sum != 0 { region.add(offset(region, outcome, word: bucketCount), delta.sum) }
        if delta.count != 0 { region.add(offset(region, outcome, word: bucketCount + 1), delta.count) }
    }

    public static func read(_ outcome: Outcome, from region: SharedRegion) -> Snapshot {
        Snapshot(buckets: (0..<bucketCount).map { region.load(offset(region, outcome, word: $0)) },
                 sum: region.load(offset(region, outcome, word: bucketCount)),
                 count: region.load(offset(region, outcome, word: bucketCount + 1)))
    }
}

/// One worker's skew counts: fixed-size, mutated in place on the event loop (no allocation per
/// handshake), moved to shared memory by the counter publisher.
public struct SkewCounts: Sendable {
    public private(set) var total = SkewHistogram.Snapshot()
    private var published = SkewHistogram.Snapshot()

    public init() {}

    /// `skew`: seconds, signed, whatever the peer sent (magnitude cannot trap, sums wrap).
    public mutating func record(_ skew: Int64) {
        let m = skew.magnitude
        total.buckets[SkewHistogram.bucket(m)] &+= 1
        total.sum &+= m
        total.count &+= 1
    }

    /// What was recorded since the last call (and marks it published).
    public mutating func takeDelta() -> SkewHistogram.Snapshot? {
        guard total.count != published.count else { return nil }
        var delta = SkewHistogram.Snapshot()
        for i in delta.buckets.indices { delta.buckets[i] = total.buckets[i] &- published.buckets[i] }
        delta.sum = total.sum &- published.sum
        delta.count = total.count &- published.count
        published = total
        return delta
    }
}
