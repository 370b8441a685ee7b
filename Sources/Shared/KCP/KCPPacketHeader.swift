/// The disguise V2Ray puts in front of every mKCP datagram (v2fly transport/internet/headers/*). The
/// receiver only skips `size` bytes and never checks them, so these are pure outbound state:
///
///   srtp:          0xB5E8:2 | counter:2 (random start, +1 before each packet)
///   utp:           connectionID:2 (random) | 0x01 | 0x00
///   wechat-video:  0xA1 0x08 | counter:4 (random 16-bit start, +1 before each packet) | 00 10 11 18 30 22 30
///   dtls:          23 | 254 253 | epoch:2 (random) | 00 00 | sequence:4 (from 0) | length:2 (17, +17, −50 past 100)
///   wireguard:     04 00 00 00
public struct KCPPacketHeader: Sendable {
    public let type: KCPSettings.HeaderType
    private var counter: UInt32
    private var aux: UInt16
    private var length: UInt16 = 17

    /// `random` seeds the counters and IDs that V2Ray draws at random.
    public init(_ type: KCPSettings.HeaderType, random: UInt32) {
        self.type = type
        counter = type == .dtls ? 0 : random & 0xFFFF
        aux = UInt16(truncatingIfNeeded: random >> 16)
    }

    public var size: Int {
        switch type {
        case .none: 0
        case .srtp, .utp, .wireguard: 4
        case .wechatVideo, .dtls: 13
        }
    }

    /// Writes the next header into `p` (`size` bytes).
    public mutating func write(into p: UnsafeMutableRawBufferPointer) {
        func be16(_ v: UInt16, _ at: Int) { p[at] = UInt8(v >> 8); p[at + 1] = UInt8(truncatingIfNeeded: v) }
        func be32(_ v: UInt32, _ at: Int) { be16(UInt16(v >> 16), at); be16(UInt16(truncatingIfNeeded: v), at + 2) }
        switch type {
        case .none: break
        case .srtp:
            counter = (counter &+ 1) & 0xFFFF
            be16(0xB5E8, 0); be16(UInt16(counter), 2)
        case .utp:
            be16(aux, 0); p[2] = 1; p[3] = 0
        case .wechatVideo:
            counter &+= 1
            p[0] = 0xA1; p[1] = 0x08; be32(counter, 2)
            for (i, b) in [0x00, 0x10, 0x11, 0x18, 0x30, 0x22, 0x30].enumerated() { p[6 + i] = UInt8(b) }
        case .dtls:
            p[0] = 23; p[1] = 254; p[2] = 253; be16(aux, 3); p[5] = 0; p[6] = 0
            be32(counter, 7)
            counter &+= 1
            be16(length, 11)
            length += 17
            if length > 100 { length -= 50 }
        case .wireguard:
            p[0] = 4; p[1] = 0; p[2] = 0; p[3] = 0
        }
    }
}
