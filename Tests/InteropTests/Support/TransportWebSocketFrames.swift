// A deliberately small, independent RFC 6455 frame codec for the transport tests' raw client (the
// code under test uses NIO's): masked binary frames out, server frames in.

import Foundation

enum TestWebSocketFrames {
    /// One masked binary frame (FIN set) carrying `payload` (RFC 6455 §5.2, §5.3).
    static func maskedBinary(_ payload: [UInt8], opcode: UInt8 = 0x2) -> [UInt8] {
        var out: [UInt8] = [0x80 | opcode]
        let n = payload.count
        if n < 126 {
            out.append(0x80 | UInt8(n))
        } else if n <= 0xFFFF {
            out += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((n >> shift) & 0xFF)) }
        }
        let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
        out += key
        out.reserveCapacity(out.count + n)
        for (i, b) in payload.enumerated() { out.append(b ^ key[i & 3]) }
        return out
    }

    /// Reassembles the server's frames from a byte stream.
    struct Reader {
        enum Event: Equatable {
            case data([UInt8])
            case close
            case control(UInt8)
        }

        private var pending: [UInt8] = []
        /// Every frame from the server must be unmasked (RFC 6455 §5.1); counted for the assertions.
        private(set) var maskedFrames = 0

        mutating func feed(_ bytes: [UInt8]) -> [Event] {
            pending += bytes
            var events: [Event] = []
            var offset = 0
            while true {
                let available = pending.count - offset
                guard available >= 2 else { break }
                let b0 = pending[offset], b1 = pending[offset + 1]
                var header = 2
                var length = Int(b1 & 0x7F)
                if length == 126 {
                    guard available >= 4 else { break }
                    length = Int(pending[offset + 2]) << 8 | Int(pending[offset + 3])
                    header = 4
                } else if length == 127 {
                    guard available >= 10 else { break }
                    length = (0..<8).reduce(0) { $0 << 8 | Int(pending[offset + 2 + $1]) }
                    header = 10
                }
                let masked = b1 & 0x80 != 0
                if masked { header += 4 }
                guard available >= header + length else { break }
                var payload = Array(pending[(offset + header)..<(offset + header + length)])
                if masked {
                    maskedFrames += 1
                    let key = Array(pending[(offset + header - 4)..<(offset + header)])
                    for i in payload.indices { payload[i] ^= key[i & 3] }
                }
                switch b0 & 0x0F {
                case 0x0, 0x1, 0x2: events.append(.data(payload))
                case 0x8: events.append(.close)
                default: events.append(.control(b0 & 0x0F))
                }
                offset += header + length
            }
            pending.removeFirst(offset)
            return events
        }
    }
}
