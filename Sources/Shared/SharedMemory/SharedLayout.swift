// Where everything lives in the shared-memory region (one memfd, created by the supervisor, mapped
// MAP_SHARED by it and by every worker). Pure arithmetic: the supervisor writes the parameters into
// the header, a worker reads them back and derives the same offsets, so both sides always agree.
//
//   0      header (4096 bytes): magic, version, parameters, two global counters,
//          and at 1024/1088/1152 the locks of the three counter tables, at 1280 the user limits' lock
//   4096   worker slots          slotCount × 128 bytes      (WorkerSlots)
//   …      user counters          userCapacity × 128 bytes   (CounterTable: per-user traffic)
//   …      rejection counters     reasonCapacity × 128 bytes (CounterTable: per-reason rejections)
//   …      named statistics       statCapacity × 256 bytes   (CounterTable: the API's counters, StatName)
//   …      per-user limit state   userCapacity × 576 bytes   (UserLimitTable: rate clocks, source addresses)
//   …      connections by worker  slotCount × userCapacity × 8 bytes (UserLimitTable: row per worker slot)
//   …      replay filter          stripes × (64-byte lock cell + buckets × bucketSlots × 24 bytes); the
//                                  lock cell's last word holds the stripe's level (SharedReplayFilter)
//   ── metrics block (Prometheus, version 3; see MetricsBlock.swift) ──
//   …      clock-skew histogram   512 bytes                  (SkewHistogram)
//   …      event-loop lag         slotCount × 64 bytes       (WorkerSlots+Lag: per worker slot)
//   …      metric counters        metricCapacity × 128 bytes (CounterTable .metrics: per tag and user)
//          header: metricCapacity at 104, the table's lock at 1216
//
// Every offset is a multiple of 64 (a cache line): no two processes' hot words share a line by
// accident, and the 64-bit words are naturally aligned for the atomics.

public struct SharedLayout: Equatable, Sendable {
    public struct Parameters: Equatable, Sendable {
        /// Worker slots: live workers of every generation at once (a reload overlaps two or more).
        public var slotCount: Int = 256
        public var userCapacity: Int = 16_384
        public var reasonCapacity: Int = 64
        /// Named counters of the gRPC API (`user>>>EMAIL>>>traffic>>>uplink`, ...): four per user
        /// with every switch on, plus two per tagged inbound and outbound.
        public var statCapacity: Int = 65_536
        /// Replay filter: `stripes` independently locked parts of up to `bucketsPerStripe` buckets
        /// (a power of two) of `bucketSlots` entries. The default holds 1 Mi AuthIDs (24 MiB); a
        /// stripe uses only as many buckets as its peak of live entries needs (SharedReplayFilter),
        /// so the pages a light load touches stay few.
        public var replayStripes: Int = 64
        public var replayBucketsPerStripe: Int = 1024
        public var replayBucketSlots: Int = 16
        // Metrics block.
        /// Per-inbound, per-outbound and per-user connection and traffic counters of the Prometheus
        /// metrics (CounterTable .metrics): one per user plus one per tag.
        public var metricCapacity: Int = 20_480

        public init() {}

        public init(slotCount: Int, userCapacity: Int, reasonCapacity: Int,
                    replayStripes: Int, replayBucketsPerStripe: Int, replayBucketSlots: Int, statCapacity: Int = 1024,
                    metricCapacity: Int = 1024) {
            self.slotCount = slotCount
            self.metricCapacity = metricCapacity
            self.statCapacity = statCapacity
            self.userCapacity = userCapacity
            self.reasonCapacity = reasonCapacity
            self.replayStripes = replayStripes
            self.replayBucketsPerStripe = replayBucketsPerStripe
            self.replayBucketSlots = replayBucketSlots
        }

        public var replayCapacity: Int { replayStripes * replayBucketsPerStripe * replayBucketSlots }

        func validate() throws {
            let all = [slotCount, userCapacity, reasonCapacity, statCapacity, replayStripes, replayBucketsPerStripe, replayBucketSlots,
                       metricCapacity]
            guard all.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else { throw SharedMemoryError.badParameters("\(self)") }
            // Stripes grow by doubling their bucket count (SharedReplayFilter).
            guard replayBucketsPerStripe.nonzeroBitCount == 1 else { throw SharedMemoryError.badParameters("\(self)") }
        }
    }

    public static let magic: UInt64 = 0x564D_5348_4D00_0001 // "VMSHM" … 1
    /// 3: per-user limit state, and the metrics block (skew histogram, lag cells, metric counters).
    /// (The replay stripes' level word, added later, sits in bytes a version-3 region already had and
    /// left zero, which reads as level 0: see SharedReplayFilter on binary upgrades.)
    public static let version: UInt64 = 3
    public static let headerSize = 4096
    public static let slotStride = 128
    public static let counterStride = 128
    public static let statStride = 256
    /// UserLimitTable: 64 bytes of rate clocks, then `limitSourceSlots` × 32-byte address slots.
    public static let limitSourceSlots = 16
    public static let limitStride = 64 + limitSourceSlots * 32
    public static let replayEntrySize = 24
    public static let lockCell = 64
    /// Where, in a replay stripe's lock cell, its level word sits: after the mutex (40 bytes on
    /// x86-64 and arm64 glibc; checked at start-up).
    public static let stripeLevelInLockCell = 56
    public static let lagStride = 64

    // Header word offsets.
    static let magicOffset = 0
    static let versionOffset = 8
    static let totalSizeOffset = 16
    static let parameterOffsets = (slots: 24, users: 32, reasons: 40, stripes: 48, buckets: 56, bucketSlots: 64, stats: 96)
    static let replaySeedOffset = 72
    /// Counter-table entries that found no room (atomic).
    static let counterOverflowOffset = 80
    /// Live entries evicted from a full bucket of a stripe at its largest size (atomic).
    static let replayFullOffset = 88
    /// Totals of workers that have exited (WorkerSlots.retire): in the region rather than in a
    /// supervisor's memory, so that the supervisor a binary upgrade starts carries them on.
    static let retiredOffsets = (accepted: 128, bytesUp: 136, bytesDown: 144, rejected: 152, acceptErrors: 160)
    static let userLockOffset = 1024
    static let reasonLockOffset = 1088
    static let statLockOffset = 1152
    // Metrics block: its table's capacity and lock live in the header like the others'.
    static let metricCapacityOffset = 104
    static let metricLockOffset = 1216
    static let limitLockOffset = 1280

    public let parameters: Parameters
    public let slotsOffset: Int
    public let usersOffset: Int
    public let reasonsOffset: Int
    public let statsOffset: Int
    public let limitsOffset: Int
    public let connectionGridOffset: Int
    public let replayOffset: Int
    public let replayStripeStride: Int
    // Metrics block.
    public let skewOffset: Int
    public let lagOffset: Int
    public let metricsOffset: Int
    public let totalSize: Int

    public init(_ parameters: Parameters) throws {
        try parameters.validate()
        self.parameters = parameters
        slotsOffset = Self.headerSize
        usersOffset = slotsOffset + parameters.slotCount * Self.slotStride
        reasonsOffset = usersOffset + parameters.userCapacity * Self.counterStride
        statsOffset = reasonsOffset + parameters.reasonCapacity * Self.counterStride
        limitsOffset = statsOffset + parameters.statCapacity * Self.statStride
        connectionGridOffset = limitsOffset + parameters.userCapacity * Self.limitStride
        replayOffset = connectionGridOffset + parameters.slotCount * parameters.userCapacity * 8
        let entries = parameters.replayBucketsPerStripe * parameters.replayBucketSlots * Self.replayEntrySize
        replayStripeStride = Self.roundUp(Self.lockCell + entries, to: 64)
        // Metrics block, after everything else so that the offsets before it stay as they were.
        skewOffset = replayOffset + parameters.replayStripes * replayStripeStride
        lagOffset = skewOffset + SkewHistogram.blockSize
        metricsOffset = lagOffset + parameters.slotCount * Self.lagStride
        let end = metricsOffset + parameters.metricCapacity * Self.counterStride
        totalSize = Self.roundUp(end, to: 4096)
    }

    static func roundUp(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }

    public func slotOffset(_ index: Int) -> Int { slotsOffset + index * Self.slotStride }

    public func limitOffset(user: Int) -> Int { limitsOffset + user * Self.limitStride }

    /// Worker slot `slot`'s count of open connections of user `user` (its row is written by that worker only).
    public func connectionCountOffset(slot: Int, user: Int) -> Int {
        connectionGridOffset + (slot * parameters.userCapacity + user) * 8
    }

    /// Offset of stripe `stripe`'s lock; its level word is 56 bytes later, and its bucket `bucket`
    /// starts 64 bytes later plus `bucket × bucketSlots × 24`.
    public func stripeOffset(_ stripe: Int) -> Int { replayOffset + stripe * replayStripeStride }

    public func stripeLevelOffset(_ stripe: Int) -> Int { stripeOffset(stripe) + Self.stripeLevelInLockCell }

    public func bucketOffset(stripe: Int, bucket: Int) -> Int {
        stripeOffset(stripe) + Self.lockCell + bucket * parameters.replayBucketSlots * Self.replayEntrySize
    }
}

public enum SharedMemoryError: Error, Equatable, CustomStringConvertible {
    case badParameters(String)
    case notARegion(String)
    case sizeMismatch(expected: Int, actual: Int)
    case lockInit(Int32)

    public var description: String {
        switch self {
        case .badParameters(let p): "shared memory parameters out of range: \(p)"
        case .notARegion(let why): "not a vmessd shared-memory region: \(why)"
        case .sizeMismatch(let expected, let actual): "shared-memory region is \(actual) bytes, its header says \(expected)"
        case .lockInit(let code): "cannot initialize a process-shared lock (errno \(code))"
        }
    }
}
