import NIOCore
import NIOWebSocket

/// The frames this side writes, encoded here rather than by NIO's WebSocketFrameEncoder so that the
/// client's masking runs word by word (NIO's masks byte by byte, which profiled at a third of a
/// worker's CPU on a WebSocket stream):
///
///   byte 0:   FIN(1) RSV(000) opcode(4)
///   byte 1:   MASK(1) length(7)          126 → 16-bit length follows, 127 → 64-bit length follows
///   [2 or 8 bytes of extended length, big-endian] [4 bytes masking key if MASK]   payload…
///
/// RFC 6455 §5.2; a client masks every frame with a fresh key (§5.3), a server never masks.
enum WebSocketFrameHead {
    /// The frame header for `length` payload bytes.
    static func write(fin: Bool = true, opcode: WebSocketOpcode, length: Int, maskKey: WebSocketMaskingKey?,
                      into out: inout ByteBuffer) {
        out.writeInteger((fin ? 0x80 : 0) | UInt8(webSocketOpcode: opcode))
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        switch length {
        case ..<126:
            out.writeInteger(maskBit | UInt8(length))
        case ...0xFFFF:
            out.writeInteger(maskBit | 126)
            out.writeInteger(UInt16(length))
        default:
            out.writeInteger(maskBit | 127)
            out.writeInteger(UInt64(length))
        }
        if let maskKey { out.writeBytes(maskKey) }
    }

    /// `payload` XOR-ed with `key` (key index 0 at the payload's first byte), appended to `out`: the
    /// masking of §5.3, which is its own inverse, so this also unmasks. Eight bytes per step.
    static func appendMasked(_ payload: ByteBuffer, key: WebSocketMaskingKey, to out: inout ByteBuffer) {
        let n = payload.readableBytes
        guard n > 0 else { return }
        let k = Array(key)
        // The key twice, in memory order. Built arithmetically: loading it from a temporary 8-byte
        // array was miscompiled at -O by Swift 6.3 (only the first byte survived; debug was fine).
        let k32 = UInt64(k[0]) | UInt64(k[1]) << 8 | UInt64(k[2]) << 16 | UInt64(k[3]) << 24
        let word = UInt64(littleEndian: k32 | k32 << 32)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { dst in
            payload.withUnsafeReadableBytes { src in
                var i = 0
                while i &+ 8 <= n {
                    let v = src.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    dst.storeBytes(of: v ^ word, toByteOffset: i, as: UInt64.self)
                    i &+= 8
                }
                while i < n {
                    dst[i] = src[i] ^ k[i & 3]
                    i &+= 1
                }
            }
            return n
        }
    }
}
