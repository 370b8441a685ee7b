// A compiled set of CIDR blocks: merged, sorted, non-overlapping ranges per family, searched by
// binary search (log2 of ~8,000 ranges for geoip:cn is 13 comparisons). IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) and blocks are folded into IPv4 so a dual-stack socket's view of an IPv4 peer
// matches IPv4 rules. A class: it is read once per decision, and a struct of four arrays would be
// copied (four retains) each time.

final class IPRangeSet {
    /// A 128-bit value as two words; the order is the numeric one.
    struct Word128: Comparable {
        var high: UInt64
        var low: UInt64
        static func < (a: Word128, b: Word128) -> Bool { (a.high, a.low) < (b.high, b.low) }
    }

    private let v4Starts: [UInt32]
    private let v4Ends: [UInt32]
    private let v6Starts: [Word128]
    private let v6Ends: [Word128]

    var isEmpty: Bool { v4Starts.isEmpty && v6Starts.isEmpty }
    var rangeCount: Int { v4Starts.count + v6Starts.count }

    init(_ cidrs: [CIDR]) {
        var v4: [(UInt32, UInt32)] = []
        var v6: [(Word128, Word128)] = []
        for cidr in cidrs {
            if cidr.address.count == 4 {
                v4.append(Self.range4(Self.word32(cidr.address[...]), prefix: cidr.prefix))
            } else if cidr.address.count == 16 {
                if Self.isMapped(cidr.address), cidr.prefix >= 96 {
                    v4.append(Self.range4(Self.word32(cidr.address[12...]), prefix: cidr.prefix - 96))
                } else {
                    v6.append(Self.range6(Self.word128(cidr.address), prefix: cidr.prefix))
                }
            }
        }
        (v4Starts, v4Ends) = Self.merge(v4, successor: { $0 == .max ? nil : $0 + 1 })
        (v6Starts, v6Ends) = Self.merge(v6, successor: { w in
            if w.low != .max { return Word128(high: w.high, low: w.low + 1) }
            return w.high == .max ? nil : Word128(high: w.high + 1, low: 0)
        })
    }

    func contains(_ address: [UInt8]) -> Bool {
        if address.count == 4 {
            return Self.search(v4Starts, v4Ends, UInt32(address[0]) << 24 | UInt32(address[1]) << 16 | UInt32(address[2]) << 8 | UInt32(address[3]))
        }
        guard address.count == 16 else { return false }
        // A mapped address is also inside a v6 block shorter than /96 that covers ::ffff:0:0/96.
        if Self.isMapped(address), Self.search(v4Starts, v4Ends, Self.word32(address[12...])) { return true }
        return Self.search(v6Starts, v6Ends, Self.word128(address))
    }

    // MARK: helpers

    private static func search<T: Comparable>(_ starts: [T], _ ends: [T], _ value: T) -> Bool {
        // Last range whose start <= value.
        var low = 0
        var high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low > 0 && value <= ends[low - 1]
    }

    private static func merge<T: Comparable>(_ ranges: [(T, T)], successor: (T) -> T?) -> ([T], [T]) {
        var starts: [T] = []
        var ends: [T] = []
        for (start, end) in ranges.sorted(by: { $0.0 < $1.0 }) {
            if let last = ends.last, start <= last || successor(last) == start {
                if end > last { ends[ends.count - 1] = end }
            } else {
                starts.append(start)
                ends.append(end)
            }
        }
        return (starts, ends)
    }

    private static func isMapped(_ address: [UInt8]) -> Bool {
        address.count == 16 && address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xff && address[11] == 0xff
    }

    private static func word32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func word128(_ bytes: [UInt8]) -> Word128 {
        Word128(high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }

    private static func range4(_ base: UInt32, prefix: Int) -> (UInt32, UInt32) {
        let hostMask: UInt32 = prefix == 0 ? .max : (prefix >= 32 ? 0 : UInt32.max >> UInt32(prefix))
        return (base & ~hostMask, base | hostMask)
    }

    private static func range6(_ base: Word128, prefix: Int) -> (Word128, Word128) {
        let highMask: UInt64 = prefix >= 64 ? 0 : (prefix == 0 ? .max : UInt64.max >> UInt64(prefix))
        let lowMask: UInt64 = prefix >= 128 ? 0 : (prefix <= 64 ? .max : UInt64.max >> UInt64(prefix - 64))
        return (Word128(high: base.high & ~highMask, low: base.low & ~lowMask),
                Word128(high: base.high | highMask, low: base.low | lowMask))
    }
}
