// A bounded reader for the protobuf wire format, just enough for V2Ray's geodata files.
//
//   field key   = varint (field number << 3 | wire type)
//   wire type 0 = varint          value: up to 10 bytes, 7 bits each, low group first
//   wire type 1 = 64-bit          8 bytes
//   wire type 2 = length-delimited varint length, then that many bytes (strings, bytes, messages)
//   wire type 5 = 32-bit          4 bytes
//
// The files come from wherever the operator downloaded them, so every length is checked against the
// bytes that remain and every malformed input is a thrown `Malformed`, never a trap or an unbounded
// allocation: the reader only hands out index ranges into the caller's buffer.

struct ProtobufReader {
    struct Malformed: Error, Equatable {
        var offset: Int
        var reason: String
    }

    enum WireType: UInt8 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    struct Field {
        var number: UInt64
        var wireType: WireType
    }

    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    /// Reads `bytes[range]` (the whole buffer by default); `range` must lie inside `bytes`.
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        let r = range ?? 0..<bytes.count
        precondition(r.lowerBound >= 0 && r.upperBound <= bytes.count)
        offset = r.lowerBound
        end = r.upperBound
    }

    var isAtEnd: Bool { offset >= end }

    /// The next field key, or nil at the end of the range.
    mutating func nextField() throws -> Field? {
        guard !isAtEnd else { return nil }
        let start = offset
        let key = try varint()
        guard let wire = WireType(rawValue: UInt8(key & 7)) else {
            throw Malformed(offset: start, reason: "unsupported wire type \(key & 7)")
        }
        let number = key >> 3
        guard number != 0 else { throw Malformed(offset: start, reason: "field number 0") }
        return Field(number: number, wireType: wire)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < end else { throw Malformed(offset: start, reason: "truncated varint") }
            let byte = bytes[offset]
            offset += 1
            // The tenth byte may only carry the top bit of a 64-bit value.
            if shift == 63 && byte > 1 { throw Malformed(offset: start, reason: "varint longer than 64 bits") }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// The byte range of a length-delimited value; the reader moves past it.
    mutating func lengthDelimited() throws -> Range<Int> {
        let start = offset
        let length = try varint()
        guard length <= UInt64(end - offset) else {
            throw Malformed(offset: start, reason: "length \(length) runs past the end (\(end - offset) bytes left)")
        }
        let range = offset..<(offset + Int(length))
        offset = range.upperBound
        return range
    }

    mutating func string() throws -> String {
        String(decoding: bytes[try lengthDelimited()], as: UTF8.self)
    }

    /// Skips the value of a field of any supported wire type.
    mutating func skip(_ wireType: WireType) throws {
        switch wireType {
        case .varint: _ = try varint()
        case .lengthDelimited: _ = try lengthDelimited()
        case .fixed64: try advance(8)
        case .fixed32: try advance(4)
        }
    }

    /// Reads a field that must have `expected` wire type (a wrong one means the file is not what it claims).
    func require(_ field: Field, _ expected: WireType) throws {
        guard field.wireType == expected else {
            throw Malformed(offset: offset, reason: "field \(field.number) has wire type \(field.wireType.rawValue), expected \(expected.rawValue)")
        }
    }

    private mutating func advance(_ count: Int) throws {
        guard end - offset >= count else { throw Malformed(offset: offset, reason: "truncated fixed-size field") }
        offset += count
    }
}
