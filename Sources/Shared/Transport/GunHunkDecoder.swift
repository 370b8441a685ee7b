import NIOCore

// The gRPC ("gun") transport's byte stream, as V2Ray, Xray and sing-box put it in the DATA frames of
// one HTTP/2 stream: gRPC length-prefixed messages (gRPC over HTTP/2, "Length-Prefixed-Message"),
// each a protobuf `Hunk { bytes data = 1; }` (method Tun) or `MultiHunk { repeated bytes data = 1; }`
// (method TunMulti):
//
//   +------------+-------------------+----------------------------------------------+
//   | compressed | message length    | protobuf message (length bytes)              |
//   | 1 byte (0) | 4 bytes, BE       |  0x0A  varint n  n bytes   [0x0A varint n ...]|
//   +------------+-------------------+----------------------------------------------+
//
// The tunnelled stream is the concatenation of every `data` field in order (a Hunk has one, a
// MultiHunk any number); both decode the same way here. Fields other than 1 are skipped as protobuf
// says (a newer peer may add some); a `data` field with a wire type other than 2 is an error.
//
// Nothing is buffered per message: `data` bytes come out as zero-copy slices of the input as soon as
// they arrive, so the memory a peer can make us hold is what the HTTP/2 flow-control window lets it
// send, not the message length it announces. Only the headers (5 bytes, then a tag and a length
// varint, at most 20 bytes) must be contiguous; the caller keeps unconsumed bytes for the next call.

/// Incremental decoder of one gun stream direction (see above). `decode` never traps on any input.
public struct GunHunkDecoder: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The compressed flag: nobody negotiated a grpc-encoding, so compressed messages are invalid.
        case compressed
        /// A message longer than the limit.
        case messageTooLarge(UInt32)
        /// A varint longer than 10 bytes or running past its message.
        case badVarint
        /// A field's length (or a fixed-size field) runs past the end of its message.
        case fieldOverrunsMessage
        /// A wire type protobuf does not define (3, 4 groups; 6, 7), or `data` not length-delimited.
        case badWireType(UInt8)

        public var description: String {
            switch self {
            case .compressed: "compressed gRPC message without a negotiated encoding"
            case .messageTooLarge(let n): "gRPC message of \(n) bytes exceeds the limit"
            case .badVarint: "malformed protobuf varint"
            case .fieldOverrunsMessage: "protobuf field runs past its gRPC message"
            case .badWireType(let t): "unexpected protobuf wire type \(t)"
            }
        }
    }

    /// grpc-go's default receive limit (4 MiB): a real peer never sends more in one message.
    public static let defaultMaximumMessageSize = 4 << 20

    private enum State: Sendable {
        /// Before a message's 5-byte prefix.
        case messageHeader
        /// Inside a message, before a field's tag; `left` bytes of the message remain.
        case fieldHeader(left: Int)
        /// Inside field 1: `field` bytes of data remain, then `left` more bytes of the message.
        case data(field: Int, left: Int)
        /// Inside a skipped field.
        case skip(field: Int, left: Int)
    }

    private var state = State.messageHeader
    /// Header bytes split across inputs, kept for the next `feed` (at most 20 bytes readable).
    private var held: ByteBuffer?
    public let maximumMessageSize: Int

    public init(maximumMessageSize: Int = GunHunkDecoder.defaultMaximumMessageSize) {
        self.maximumMessageSize = maximumMessageSize
    }

    /// True between messages with nothing held: a stream that ends here ended cleanly.
    public var isAtMessageBoundary: Bool {
        guard (held?.readableBytes ?? 0) == 0 else { return false }
        if case .messageHeader = state { return true }
        return false
    }

    /// Bytes held between `feed` calls (a split header; never more than 20).
    var heldByteCount: Int { held?.readableBytes ?? 0 }

    /// Feeds the next bytes of the stream (e.g. one DATA frame's payload): `emit` gets each run of
    /// tunnelled bytes in order and returns false to stop (the rest is then dropped). Header bytes
    /// cut off at the end are held and completed by the next call; that is the only copying, a few
    /// bytes except when a header straddles two inputs (then the next input is appended to them once).
    public mutating func feed(_ incoming: ByteBuffer, _ emit: (ByteBuffer) -> Bool) throws {
        var work: ByteBuffer
        if var earlier = held {
            var incoming = incoming
            earlier.writeBuffer(&incoming)
            work = earlier
        } else {
            work = incoming
        }
        held = nil
        while let slice = try decode(&work) {
            guard emit(slice) else { return }
        }
        if work.readableBytes > 0 {
            work.discardReadBytes()
            held = work
        }
    }

    /// The next run of tunnelled bytes (a slice of `buffer`, consumed from it), or nil when `buffer`
    /// holds no more complete header and no data: call again with more bytes appended.
    public mutating func decode(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        while true {
            switch state {
            case .messageHeader:
                guard buffer.readableBytes >= 5,
                      let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                      let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
                else { return nil }
                guard flag == 0 else { throw Failure.compressed }
                guard length <= maximumMessageSize else { throw Failure.messageTooLarge(length) }
                buffer.moveReaderIndex(forwardBy: 5)
                state = .fieldHeader(left: Int(length))
            case .fieldHeader(let left):
                if left == 0 {
                    state = .messageHeader
                    continue
                }
                // Tag varint, then (wire type 2) a length varint: parse from a peek, commit when whole.
                var cursor = buffer.readerIndex
                let end = buffer.readerIndex + min(buffer.readableBytes, left)
                guard let tag = try Self.varint(buffer, at: &cursor, end: end, wholeMessage: buffer.readableBytes >= left) else {
                    return nil
                }
                let wireType = UInt8(truncatingIfNeeded: tag & 7)
                let fieldNumber = tag >> 3
                var size: Int
                switch wireType {
                case 0:
                    guard let _ = try Self.varint(buffer, at: &cursor, end: end, wholeMessage: buffer.readableBytes >= left) else {
                        return nil
                    }
                    size = 0
                case 1: size = 8
                case 5: size = 4
                case 2:
                    guard let n = try Self.varint(buffer, at: &cursor, end: end, wholeMessage: buffer.readableBytes >= left) else {
                        return nil
                    }
                    guard n <= UInt64(Int32.max) else { throw Failure.fieldOverrunsMessage }
                    size = Int(n)
                default: throw Failure.badWireType(wireType)
                }
                if fieldNumber == 1 && wireType != 2 { throw Failure.badWireType(wireType) }
                let used = cursor - buffer.readerIndex
                let rest = left - used
                guard size <= rest else { throw Failure.fieldOverrunsMessage }
                buffer.moveReaderIndex(forwardBy: used)
                state = fieldNumber == 1 ? .data(field: size, left: rest - size) : .skip(field: size, left: rest - size)
            case .data(let field, let left):
                if field == 0 {
                    state = .fieldHeader(left: left)
                    continue
                }
                guard buffer.readableBytes > 0 else { return nil }
                let n = min(field, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = .data(field: field - n, left: left)
                return slice
            case .skip(let field, let left):
                let n = min(field, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n < field {
                    state = .skip(field: field - n, left: left)
                    return nil
                }
                state = .fieldHeader(left: left)
            }
        }
    }

    /// A protobuf varint at `cursor` (advanced past it) before `end`; nil if the bytes so far end
    /// before it does and more may come (`wholeMessage` false), an error if it is too long or the
    /// message ends inside it.
    private static func varint(_ buffer: ByteBuffer, at cursor: inout Int, end: Int, wholeMessage: Bool) throws -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var index = cursor
        while true {
            guard shift < 64 else { throw Failure.badVarint }
            guard index < end, let byte = buffer.getInteger(at: index, as: UInt8.self) else {
                if wholeMessage { throw Failure.badVarint }
                return nil
            }
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        cursor = index
        return value
    }
}

/// The prefix that turns `length` bytes into one gun message: gRPC's 5-byte header and the Hunk's
/// field-1 tag and length. The bytes themselves follow unchanged (no copy of the payload).
public enum GunHunkEncoder {
    /// 5 + 1 + at most 5 varint bytes for a 32-bit length.
    public static let maximumPrefixSize = 11

    public static func writePrefix(length: Int, into buffer: inout ByteBuffer) {
        precondition(length >= 0 && length <= Int(UInt32.max) - maximumPrefixSize, "gun payload too large")
        var varintSize = 1
        var v = length >> 7
        while v != 0 { varintSize += 1; v >>= 7 }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(1 + varintSize + length))
        buffer.writeInteger(UInt8(0x0A))
        var n = UInt64(length)
        while n >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: n) | 0x80)
            n >>= 7
        }
        buffer.writeInteger(UInt8(n))
    }
}
