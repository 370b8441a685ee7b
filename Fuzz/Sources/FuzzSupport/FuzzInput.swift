/// The fuzzer's bytes read as a small program: a few leading bytes choose the mode, the key or the
/// option set, the rest is the payload. Reading past the end yields zeros, so every input is valid
/// for every target and libFuzzer can grow an input byte by byte into a deeper path.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = Array(UnsafeBufferPointer(start: data, count: size))
    }

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - position }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    public mutating func uint16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> [UInt8] {
        let n = min(max(count, 0), remaining)
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { take(remaining) }
}
