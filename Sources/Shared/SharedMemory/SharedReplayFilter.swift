// The AEAD AuthID replay filter (vmess-protocol.md §5.5) in shared memory, so that a replayed
// handshake is rejected whichever worker process it reaches.
//
// Generations without rotation: time is cut into 120-second epochs (now / 120) and every entry
// carries the epoch it was recorded in, plus one (0 marks a never-used entry). An entry is live while
// its epoch is the current or the previous one, so a value is remembered for 120-240 s — the same
// two generations as GenerationalReplayFilter — and "rotating" costs nothing: stale entries are
// simply free. All processes share one clock, so they agree on the epoch without talking.
//
// Bounded: a fixed table of `stripes × buckets × bucketSlots` entries of 24 bytes
//
//   0        8        16       24
//   +--------+--------+--------+
//   | key hi | key lo | epoch+1|
//   +--------+--------+--------+
//
// An AuthID hashes (with a per-region random seed) to one bucket of one stripe; the whole bucket is
// scanned under the stripe's lock (a robust process-shared mutex), so there are no probe chains
// that a stale entry could cut. A full bucket (a flood of fresh AuthIDs from someone who knows a user
// id) evicts its oldest entry rather than refusing: refusing would turn genuine users away, while an
// evicted AuthID replayed later still has to pass the worker's session history. Evictions are
// counted. Matching is exact on all 16 bytes.
//
// Crash safety: a worker killed inside the lock leaves at worst an entry whose key is written and
// whose epoch is not, which reads as free; the next locker takes the lock over (EOWNERDEAD).

public final class SharedReplayFilter: AuthIDReplayFilter {
    public static let generation: Int64 = 120

    private let region: SharedRegion
    private let layout: SharedLayout
    private let seed: UInt64
    private let stripes: UInt64
    private let buckets: UInt64
    private let bucketSlots: Int

    public init(region: SharedRegion) {
        self.region = region
        layout = region.layout
        seed = region.replaySeed
        stripes = UInt64(layout.parameters.replayStripes)
        buckets = UInt64(layout.parameters.replayBucketsPerStripe)
        bucketSlots = layout.parameters.replayBucketSlots
    }

    /// epoch + 1 for `now` (unix seconds); never 0.
    static func stamp(_ now: Int64) -> UInt64 { UInt64(max(0, now) / generation) + 1 }

    /// Live = recorded in the current or the previous epoch (or a later one, should the clock have
    /// stepped back: those stay until the clock catches up, which errs on the safe side).
    @inline(__always)
    static func isLive(_ stamp: UInt64, current: UInt64) -> Bool { stamp != 0 && stamp &+ 1 >= current }

    @inline(__always)
    func position(_ id: AuthIDKey) -> (stripe: Int, bucket: Int) {
        // splitmix64-style finalizer over both words and the seed.
        var h = (id.hi ^ seed) &* 0x9E37_79B9_7F4A_7C15 ^ id.lo
        h ^= h >> 30
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return (Int(h % stripes), Int((h / stripes) % buckets))
    }

    public func insert(_ id: AuthIDKey, now: Int64) -> Bool {
        let current = Self.stamp(now)
        let (stripe, bucket) = position(id)
        let start = layout.bucketOffset(stripe: stripe, bucket: bucket)
        let inserted: Bool = region.withLock(at: layout.stripeOffset(stripe)) {
            var free: UnsafeMutablePointer<UInt64>?
            var oldest = region.word(start)
            var entry = oldest
            for _ in 0..<bucketSlots {
                let stamp = entry[2]
                if Self.isLive(stamp, current: current) {
                    if entry[0] == id.hi && entry[1] == id.lo { return false }
                    if stamp < oldest[2] { oldest = entry }
                } else if free == nil {
                    free = entry
                }
                entry += 3
            }
            let slot: UnsafeMutablePointer<UInt64>
            if let free {
                slot = free
            } else {
                region.add(SharedLayout.replayFullOffset, 1)
                slot = oldest
                slot[2] = 0
            }
            // Key first, stamp last: see "Crash safety" above.
            slot[0] = id.hi
            slot[1] = id.lo
            slot[2] = current
            return true
        }
        return inserted
    }

    /// Live entries (for statistics and tests; takes every stripe lock in turn).
    public func liveCount(now: Int64) -> Int {
        let current = Self.stamp(now)
        var count = 0
        for stripe in 0..<Int(stripes) {
            region.withLock(at: layout.stripeOffset(stripe)) {
                var entry = region.word(layout.bucketOffset(stripe: stripe, bucket: 0))
                for _ in 0..<(Int(buckets) * bucketSlots) {
                    if Self.isLive(entry[2], current: current) { count += 1 }
                    entry += 3
                }
            }
        }
        return count
    }
}
