// Named counters shared by all workers: per-user traffic (two values: up, down), per-reason
// handshake rejections (one value), the gRPC API's named statistics (one value, names whole), and
// the Prometheus metrics' per-tag and per-user counters (four values: MetricName).
// Workers add with atomics; the supervisor reads them for `vmessd ctl stats` and the API. Entries
// are never removed, so the totals survive reloads and restarts.
//
// Entry, 128 bytes (users, reasons) or 256 bytes (stats):
//
//   0 state (0 empty, 1 in use)   8 key hi   16 key lo   24 name length   32… name (UTF-8, 80 or 208
//   bytes; users and reasons keep a cut name, stat names are never longer: StatName.maximumBytes)
//   then value 0 and value 1 (112/120, or 240/248)
// Metrics entries, 128 bytes: the same with a 64-byte name and four values at 96/104/112/120.
//
// Open addressing with linear probing. Lookups take no lock (an entry is published by storing its
// state last, after key and name); inserts take the table's process-shared lock, probe again and
// claim the first empty entry. Keys are a 128-bit FNV-1a hash of the full name, so names longer than
// the 64 stored bytes still count separately. A full table drops the counts and bumps an overflow
// counter in the header.

public struct CounterTable {
    public enum Kind { case users, reasons, stats, metrics }

    public struct Entry: Equatable, Sendable {
        /// Position in the table (for `takeValue0`).
        public var index: Int
        public var name: String
        public var value0: UInt64
        public var value1: UInt64
        /// Only .metrics entries have these (zero elsewhere).
        public var value2: UInt64 = 0
        public var value3: UInt64 = 0
        public init(index: Int = 0, name: String, value0: UInt64, value1: UInt64, value2: UInt64 = 0, value3: UInt64 = 0) {
            self.index = index
            self.name = name
            self.value0 = value0
            self.value1 = value1
            self.value2 = value2
            self.value3 = value3
        }
    }

    let region: SharedRegion
    let offset: Int
    let capacity: Int
    let lockOffset: Int
    let stride: Int
    /// Name bytes an entry holds (a multiple of 8).
    let nameCapacity: Int
    /// Values per entry: 2, or 4 for .metrics.
    let valueCount: Int
    var valueOffset: Int { 32 + nameCapacity }

    public init(region: SharedRegion, kind: Kind) {
        self.region = region
        switch kind {
        case .users:
            offset = region.layout.usersOffset
            capacity = region.layout.parameters.userCapacity
            lockOffset = SharedLayout.userLockOffset
        case .reasons:
            offset = region.layout.reasonsOffset
            capacity = region.layout.parameters.reasonCapacity
            lockOffset = SharedLayout.reasonLockOffset
        case .stats:
            offset = region.layout.statsOffset
            capacity = region.layout.parameters.statCapacity
            lockOffset = SharedLayout.statLockOffset
        case .metrics:
            offset = region.layout.metricsOffset
            capacity = region.layout.parameters.metricCapacity
            lockOffset = SharedLayout.metricLockOffset
        }
        stride = kind == .stats ? SharedLayout.statStride : SharedLayout.counterStride
        valueCount = kind == .metrics ? 4 : 2
        nameCapacity = stride - 32 - valueCount * 8
    }

    /// FNV-1a over the UTF-8 bytes, twice with different offset bases (128 bits in all).
    static func key(_ name: String) -> (UInt64, UInt64) {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325
        var b: UInt64 = 0x6C62_272E_07BB_0142
        for byte in name.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        // Never (0, 0): nothing special about it, but it keeps a zeroed entry unambiguous in dumps.
        return (a, b == 0 && a == 0 ? 1 : b)
    }

    private func entryOffset(_ index: Int) -> Int { offset + index * stride }

    /// The entry index of `name`, inserting it if needed; nil when the table is full. Callers cache
    /// the index (a worker looks each user up once).
    public func index(of name: String) -> Int? {
        let (hi, lo) = Self.key(name)
        let home = Int(hi % UInt64(capacity))
        if let found = probe(hi, lo, from: home), found.present { return found.index }
        return region.withLock(at: lockOffset) {
            // Another process may have inserted it since the lock-free probe.
            switch probe(hi, lo, from: home) {
            case .some(let found) where found.present: return found.index
            case .some(let found):
                let base = entryOffset(found.index)
                region.store(base + 8, hi)
                region.store(base + 16, lo)
                let bytes = Array(name.utf8.prefix(nameCapacity))
                region.store(base + 24, UInt64(bytes.count))
                var words = [UInt64](repeating: 0, count: nameCapacity / 8)
                words.withUnsafeMutableBytes { raw in
                    for (i, b) in bytes.enumerated() { raw[i] = b }
                }
                for (i, w) in words.enumerated() { region.store(base + 32 + i * 8, w) }
                region.store(base, 1) // published
                return found.index
            case nil:
                region.add(SharedLayout.counterOverflowOffset, 1)
                return nil
            }
        }
    }

    /// The entry holding the key (present) or the first empty one on its probe path; nil if the table
    /// is full without holding the key.
    private func probe(_ hi: UInt64, _ lo: UInt64, from home: Int) -> (index: Int, present: Bool)? {
        for step in 0..<capacity {
            let i = (home + step) % capacity
            let base = entryOffset(i)
            if region.load(base) == 0 { return (i, false) }
            if region.load(base + 8) == hi && region.load(base + 16) == lo { return (i, true) }
        }
        return nil
    }

    public func add(_ index: Int, value0: UInt64, value1: UInt64 = 0) {
        let base = entryOffset(index)
        if value0 != 0 { region.add(base + valueOffset, value0) }
        if value1 != 0 { region.add(base + valueOffset + 8, value1) }
    }

    /// Adds `amount` to value `value` (0..<valueCount) of entry `index`.
    public func add(_ index: Int, value: Int, _ amount: UInt64) {
        precondition(value >= 0 && value < valueCount, "counter table value \(value) out of range")
        if amount != 0 { region.add(entryOffset(index) + valueOffset + value * 8, amount) }
    }

    /// Reads value 0 and sets it to zero in one atomic step (the API's `reset`): counts workers add
    /// at the same moment land either in the returned value or after the reset, never nowhere.
    public func takeValue0(_ index: Int) -> UInt64 { region.exchange(entryOffset(index) + valueOffset, 0) }

    /// The entry index of `name` if it exists (never inserts).
    public func existingIndex(of name: String) -> Int? {
        let (hi, lo) = Self.key(name)
        guard let found = probe(hi, lo, from: Int(hi % UInt64(capacity))), found.present else { return nil }
        return found.index
    }

    /// Every entry in use, in table order.
    public func entries() -> [Entry] {
        var out: [Entry] = []
        for i in 0..<capacity where region.load(entryOffset(i)) == 1 {
            out.append(entry(at: i))
        }
        return out
    }

    /// The entry at `index` (in use: from `index(of:)`, `existingIndex(of:)` or `entries()`).
    public func entry(at i: Int) -> Entry {
        let base = entryOffset(i)
        let length = min(Int(region.load(base + 24)), nameCapacity)
        var words: [UInt64] = []
        for w in 0..<(nameCapacity / 8) { words.append(region.load(base + 32 + w * 8)) }
        let name = words.withUnsafeBytes { String(decoding: $0.prefix(length), as: UTF8.self) }
        var entry = Entry(index: i, name: name, value0: region.load(base + valueOffset), value1: region.load(base + valueOffset + 8))
        if valueCount == 4 {
            entry.value2 = region.load(base + valueOffset + 16)
            entry.value3 = region.load(base + valueOffset + 24)
        }
        return entry
    }
}
