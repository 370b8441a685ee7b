import NIOCore

// DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by its length as 16 bits.
// Bytes are appended as they arrive and whole messages taken out; at most one message and its prefix
// (2 + 65,535 bytes) plus the read that completed it is ever held, so a peer cannot make it grow.

public struct DNSStreamFramer {
    private var buffer: ByteBuffer?

    public init() {}

    /// Bytes held that are not yet a whole message.
    public var pendingBytes: Int { buffer?.readableBytes ?? 0 }

    public mutating func append(_ bytes: inout ByteBuffer) {
        if buffer == nil {
            buffer = bytes
        } else {
            buffer!.writeBuffer(&bytes)
        }
    }

    /// The next whole message, or nil until its last byte has arrived.
    public mutating func next() -> ByteBuffer? {
        guard var held = buffer, let length = held.getInteger(at: held.readerIndex, as: UInt16.self),
              held.readableBytes >= 2 + Int(length) else { return nil }
        held.moveReaderIndex(forwardBy: 2)
        let message = held.readSlice(length: Int(length))
        buffer = held.readableBytes == 0 ? nil : held
        if buffer != nil { buffer!.discardReadBytes() }
        return message
    }

    /// `message` with its length prefix, for writing to a stream.
    public static func frame(_ message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: 2 + message.readableBytes)
        out.writeInteger(UInt16(truncatingIfNeeded: message.readableBytes))
        out.writeImmutableBuffer(message)
        return out
    }
}
