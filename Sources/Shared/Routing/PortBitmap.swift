/// A set of ports as a 65,536-bit bitmap (8 KiB): one load and a mask per test, whatever the number of
/// ranges in the rule.
struct PortBitmap {
    private var words = [UInt64](repeating: 0, count: 1024)

    init(_ ranges: [PortRange]) {
        for range in ranges where range.from <= range.to {
            for port in Int(range.from)...Int(range.to) {
                words[port >> 6] |= 1 << UInt64(port & 63)
            }
        }
    }

    func contains(_ port: UInt16) -> Bool {
        words[Int(port) >> 6] & (1 << UInt64(port & 63)) != 0
    }
}
