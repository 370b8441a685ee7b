import NIOCore

/// One mKCP datagram around one or more segments (v2fly transport/internet/kcp io.go, crypt.go,
/// cryptreal.go):
///
///   [header (KCPPacketHeader)] | security(segments)
///
///   simple (no seed): fnv1a32(length ‖ segments):4 | length:2 | segments, then the whole of it XOR-chained
///                     in place: x[i] ^= x[i−4] from i = 4 upward (undone from the end downward)
///   seed:             nonce:12 (random) | AES-128-GCM(key = SHA-256(seed)[0..<16], no AAD)(segments) | tag:16
///
/// The receiver checks the checksum and that the length field matches the datagram exactly, or the
/// GCM tag; a datagram that fails is dropped whole. One codec per listener (server) or per dialed
/// session (client), on one event loop: it owns the header counters and the cipher contexts.
public final class KCPPacketCodec {
    public let header: KCPSettings.HeaderType
    private var headerState: KCPPacketHeader
    private let sealer: AEADCipher?
    private let opener: AEADCipher?

    public init(settings: KCPSettings, random: UInt32 = UInt32.random(in: 0...UInt32.max)) throws {
        header = settings.header
        headerState = KCPPacketHeader(settings.header, random: random)
        if let seed = settings.seed {
            let key = Array(Digest.sha256(Array(seed.utf8)).prefix(16))
            sealer = try AEADCipher(.aes128GCM, key: key, encrypting: true)
            opener = try AEADCipher(.aes128GCM, key: key, encrypting: false)
        } else {
            sealer = nil
            opener = nil
        }
    }

    public var headerSize: Int { headerState.size }
    /// Bytes a datagram carries besides its segments.
    public var overhead: Int { headerSize + (sealer == nil ? 6 : AEADCipher.nonceSize + AEADCipher.tagSize) }

    /// Strips the header and opens the security layer in place; afterwards `datagram`'s readable bytes
    /// are the segments. false: not an mKCP datagram of this configuration (drop it).
    public func open(_ datagram: inout ByteBuffer) -> Bool {
        guard datagram.readableBytes > headerSize else { return false }
        datagram.moveReaderIndex(forwardBy: headerSize)
        if let opener {
            let n = AEADCipher.nonceSize, t = AEADCipher.tagSize
            guard datagram.readableBytes > n + t else { return false }
            let ok = datagram.withUnsafeMutableReadableBytes { p -> Bool in
                let body = UnsafeMutableRawBufferPointer(rebasing: p[n..<(p.count - t)])
                return opener.open(nonce: p.baseAddress!, data: body, tag: p.baseAddress! + (p.count - t))
            }
            guard ok else { return false }
            datagram.moveReaderIndex(forwardBy: n)
            datagram.moveWriterIndex(to: datagram.writerIndex - t)
            return true
        }
        guard datagram.readableBytes > 6 else { return false }
        let ok = datagram.withUnsafeMutableReadableBytes { p -> Bool in
            Self.unchain(p)
            let stored = UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
            let length = Int(p[4]) << 8 | Int(p[5])
            return length == p.count - 6 && Checksum.fnv1a32(UnsafeRawBufferPointer(rebasing: p[4...])) == stored
        }
        guard ok else { return false }
        datagram.moveReaderIndex(forwardBy: 6)
        return true
    }

    /// Appends one datagram carrying `segments` to `out`. `segments` must leave room for the overhead
    /// within the MTU (the sender sizes segments by `overhead`).
    public func seal(_ segments: ByteBuffer, into out: inout ByteBuffer) {
        let start = out.writerIndex
        let hs = headerSize
        if hs > 0 {
            out.writeRepeatingByte(0, count: hs)
            var state = headerState
            let offset = start - out.readerIndex
            out.withUnsafeMutableReadableBytes { p in
                state.write(into: UnsafeMutableRawBufferPointer(rebasing: p[offset..<(offset + hs)]))
            }
            headerState = state
        }
        if let sealer {
            let n = AEADCipher.nonceSize, t = AEADCipher.tagSize
            let body = segments.readableBytes
            out.writeRepeatingByte(0, count: n + body + t)
            let offset = start + hs - out.readerIndex
            out.withUnsafeMutableReadableBytes { p in
                let region = UnsafeMutableRawBufferPointer(rebasing: p[offset..<(offset + n + body + t)])
                SecureRandom.fill(UnsafeMutableRawBufferPointer(rebasing: region[0..<n]))
                segments.withUnsafeReadableBytes { src in
                    if body > 0 { region.baseAddress!.advanced(by: n).copyMemory(from: src.baseAddress!, byteCount: body) }
                }
                // Cannot fail with a valid context and in-range lengths (OpenSSL errors are allocation failures).
                try! sealer.seal(nonce: region.baseAddress!, data: UnsafeMutableRawBufferPointer(rebasing: region[n..<(n + body)]),
                                 tag: region.baseAddress! + (n + body))
            }
            return
        }
        let bodyStart = out.writerIndex
        out.writeInteger(UInt32(0))
        out.writeInteger(UInt16(truncatingIfNeeded: segments.readableBytes))
        out.writeImmutableBuffer(segments)
        let offset = bodyStart - out.readerIndex
        out.withUnsafeMutableReadableBytes { p in
            let region = UnsafeMutableRawBufferPointer(rebasing: p[offset...])
            let hash = Checksum.fnv1a32(UnsafeRawBufferPointer(rebasing: region[4...]))
            region[0] = UInt8(hash >> 24); region[1] = UInt8(truncatingIfNeeded: hash >> 16)
            region[2] = UInt8(truncatingIfNeeded: hash >> 8); region[3] = UInt8(truncatingIfNeeded: hash)
            Self.chain(region)
        }
    }

    /// V2Ray's xorfwd: each byte from the fifth on is XORed with the (already chained) byte four before.
    static func chain(_ x: UnsafeMutableRawBufferPointer) {
        guard x.count > 4 else { return }
        for i in 4..<x.count { x[i] ^= x[i - 4] }
    }

    /// V2Ray's xorbkd, the inverse: from the end down, so each byte is XORed with the still-chained one.
    static func unchain(_ x: UnsafeMutableRawBufferPointer) {
        guard x.count > 4 else { return }
        for i in stride(from: x.count - 1, through: 4, by: -1) { x[i] ^= x[i - 4] }
    }
}
