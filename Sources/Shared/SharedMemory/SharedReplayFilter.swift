// The AEAD AuthID replay filter (vmess-protocol.md §5.5) in shared memory, so that a replayed
// handshake is rejected whichever worker process it reaches.
//
// Generations without rotation: time is cut into 120-second epochs (now / 120) and every entry
// carries the epoch it was recorded in, plus one (0 marks a never-used entry). An entry is live while
// its epoch is the current or the previous one, so a value is remembered for 120-240 s — the same
// two generations as GenerationalReplayFilter — and "rotating" costs nothing: stale entries are
// simply free. All processes share one clock, so they agree on the epoch without talking.
//
// Bounded: at most `stripes × buckets × bucketSlots` entries of 24 bytes
//
//   0        8        16       24
//   +--------+--------+--------+
//   | key hi | key lo | epoch+1|
//   +--------+--------+--------+
//
// An AuthID hashes (with a per-region random seed) to one stripe and a bucket number; the whole
// bucket is scanned under the stripe's lock (a robust process-shared mutex), so there are no probe
// chains that a stale entry could cut. Matching is exact on all 16 bytes.
//
// Sized by load: a stripe starts with one bucket (level 0) and uses the low `level` bits of the
// bucket number. When an AuthID finds its bucket full of live entries, the stripe doubles (level + 1:
// every entry whose bucket number has the new bit set moves to the new upper half, dead ones too, so
// the move is a pure re-hash and never forgets anything) until it reaches `buckets`. Only then does a
// full bucket (a flood of fresh AuthIDs from someone who knows a user id) evict its oldest entry
// rather than refuse: refusing would turn genuine users away, while an evicted AuthID replayed later
// still has to pass the worker's session history. Evictions are counted. So the pages a stripe has
// touched follow its peak of live entries, not the number of handshakes ever seen: a server with a
// few thousand connections keeps about one page per stripe resident instead of 24 MiB filling up
// at random (which compare.py showed as ~4 kB per idle connection).
//
// Binary upgrades: the level word is in bytes that regions made before it left zero, so a new
// supervisor adopting an old region starts every stripe at level 0. While old and new workers overlap
// (seconds), an AuthID one generation recorded in a bucket the other does not look at is not seen by
// the other; a region handed back to an old binary works the same way. Either is far less than a
// restart forgets (everything), and both stay within the stripe's memory.
//
// Crash safety: a worker killed inside the lock leaves at worst an entry whose key is written and
// whose epoch is not, which reads as free; the next locker takes the lock over (EOWNERDEAD). A
// doubling clears the upper half before copying into it and publishes the level before freeing
// what moved, so a kill part-way leaves either unreachable copies (overwritten by the next
// doubling) or stale duplicates in the lower half (dropped by the next doubling), never a lost entry.

public final class SharedReplayFilter: AuthIDReplayFilter {
    public static let generation: Int64 = 120
    /// 64-bit words per entry (key hi, key lo, stamp).
    static let entryWords = SharedLayout.replayEntrySize / 8

    private let region: SharedRegion
    private let layout: SharedLayout
    private let seed: UInt64
    private let stripes: UInt64
    private let bucketSlots: Int
    /// log2 of the most buckets a stripe may use.
    private let maxLevel: Int

    public init(region: SharedRegion) {
        self.region = region
        layout = region.layout
        seed = region.replaySeed
        stripes = UInt64(layout.parameters.replayStripes)
        bucketSlots = layout.parameters.replayBucketSlots
        maxLevel = layout.parameters.replayBucketsPerStripe.trailingZeroBitCount
    }

    /// epoch + 1 for `now` (unix seconds); never 0.
    static func stamp(_ now: Int64) -> UInt64 { UInt64(max(0, now) / generation) + 1 }

    /// Live = recorded in the current or the previous epoch (or a later one, should the clock have
    /// stepped back: those stay until the clock catches up, which errs on the safe side).
    @inline(__always)
    static func isLive(_ stamp: UInt64, current: UInt64) -> Bool { stamp != 0 && stamp &+ 1 >= current }

    /// The stripe, and a bucket number whose low `level` bits pick the bucket.
    @inline(__always)
    func position(hi: UInt64, lo: UInt64) -> (stripe: Int, bucketBits: UInt64) {
        // splitmix64-style finalizer over both words and the seed.
        var h = (hi ^ seed) &* 0x9E37_79B9_7F4A_7C15 ^ lo
        h ^= h >> 30
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return (Int(h % stripes), h / stripes)
    }

    @inline(__always)
    static func bucket(_ bits: UInt64, level: Int) -> Int { Int(truncatingIfNeeded: bits & ((1 << UInt64(level)) - 1)) }

    /// The bucket a stored entry belongs in at `level`.
    @inline(__always)
    private func bucket(of entry: UnsafeMutablePointer<UInt64>, level: Int) -> Int {
        Self.bucket(position(hi: entry[0], lo: entry[1]).bucketBits, level: level)
    }

    /// The stripe's level, read under its lock; clamped, so that a damaged word cannot send a
    /// scan outside the stripe.
    @inline(__always)
    private func level(_ stripe: Int) -> Int { Int(min(region.word(layout.stripeLevelOffset(stripe)).pointee, UInt64(maxLevel))) }

    public func insert(_ id: AuthIDKey, now: Int64) -> Bool {
        let current = Self.stamp(now)
        let (stripe, bits) = position(hi: id.hi, lo: id.lo)
        return region.withLock(at: layout.stripeOffset(stripe)) {
            var level = level(stripe)
            // At most maxLevel doublings: the loop ends.
            while true {
                let start = region.word(layout.bucketOffset(stripe: stripe, bucket: Self.bucket(bits, level: level)))
                var free: UnsafeMutablePointer<UInt64>?
                var oldest = start
                var entry = start
                for _ in 0..<bucketSlots {
                    let stamp = entry[2]
                    if Self.isLive(stamp, current: current) {
                        if entry[0] == id.hi && entry[1] == id.lo { return false }
                        if stamp < oldest[2] { oldest = entry }
                    } else if free == nil {
                        free = entry
                    }
                    entry += Self.entryWords
                }
                let slot: UnsafeMutablePointer<UInt64>
                if let free {
                    slot = free
                } else if level < maxLevel {
                    double(stripe, from: level)
                    level += 1
                    continue
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
        }
    }

    /// Doubles stripe `stripe` from 2^level buckets to 2^(level+1). Called under its lock.
    private func double(_ stripe: Int, from level: Int) {
        let half = 1 << level
        let entryWords = Self.entryWords
        // 1. Clear the upper half (left-overs of a doubling a killed worker did not finish), then copy
        // into it every entry, live or not, whose bucket number has bit `level` set.
        for lower in 0..<half {
            let target = region.word(layout.bucketOffset(stripe: stripe, bucket: lower + half))
            for slot in 0..<bucketSlots { target[slot * entryWords + 2] = 0 }
            var copied = 0
            var entry = region.word(layout.bucketOffset(stripe: stripe, bucket: lower))
            for _ in 0..<bucketSlots {
                if entry[2] != 0 && bucket(of: entry, level: level + 1) == lower + half {
                    let to = target + copied * entryWords
                    to[0] = entry[0]
                    to[1] = entry[1]
                    to[2] = entry[2]
                    copied += 1
                }
                entry += entryWords
            }
        }
        // 2. Publish the new level: from here on lookups go to the copies.
        region.word(layout.stripeLevelOffset(stripe)).pointee = UInt64(level + 1)
        // 3. Free, in the lower half, what moved up (and anything a killed doubling left there that
        // belongs to neither half).
        for lower in 0..<half {
            var entry = region.word(layout.bucketOffset(stripe: stripe, bucket: lower))
            for _ in 0..<bucketSlots {
                if entry[2] != 0 && bucket(of: entry, level: level + 1) != lower {
                    entry[2] = 0
                }
                entry += entryWords
            }
        }
    }

    /// Live entries (for statistics and tests; takes every stripe lock in turn).
    public func liveCount(now: Int64) -> Int {
        let current = Self.stamp(now)
        var count = 0
        for stripe in 0..<Int(stripes) {
            region.withLock(at: layout.stripeOffset(stripe)) {
                var entry = region.word(layout.bucketOffset(stripe: stripe, bucket: 0))
                for _ in 0..<((1 << level(stripe)) * bucketSlots) {
                    if Self.isLive(entry[2], current: current) { count += 1 }
                    entry += Self.entryWords
                }
            }
        }
        return count
    }

    /// log2 of the buckets stripe `stripe` uses (tests, statistics).
    public func level(ofStripe stripe: Int) -> Int {
        region.withLock(at: layout.stripeOffset(stripe)) { level(stripe) }
    }
}
