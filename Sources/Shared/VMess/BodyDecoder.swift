import NIOCore

/// Reads one direction of a VMess body (vmess-protocol.md §9), incrementally.
///
/// Each call takes the bytes that just arrived, decrypts every complete chunk in place in that
/// buffer, and hands the plaintext on as slices of the same storage: no copy of the payload, no
/// allocation per chunk. In stream mode the plaintext of all chunks is compacted to the front of the
/// buffer and emitted as one slice; in packet mode (UDP) every chunk is emitted as its own datagram.
/// A partial chunk is kept (at most one chunk, ≤ 64 KiB + 34 bytes) until the rest arrives.
public final class BodyDecoder {
    public enum DecodeError: Error, Equatable {
        case authenticationFailed
        case badChecksum
        case badLength(Int)
    }

    public let parameters: BodyParameters
    private let aead: AEADCipher?
    private let lengthAEAD: AEADCipher?
    private let cfb: AESCFBStream?
    private var nonce: ChunkNonce
    private var lengthNonce: ChunkNonce
    private var mask: SHAKE128
    /// Bytes of an incomplete chunk (already CFB-decrypted in legacy mode).
    private var leftover: ByteBuffer?
    /// Length field already consumed (mask draws are not repeatable) but the chunk body not complete.
    private var pending: (lval: Int, pad: Int)?
    private var ranges: [(start: Int, count: Int)] = []
    public private(set) var finished = false

    public init(_ p: BodyParameters, continuing cfb: AESCFBStream? = nil) throws {
        parameters = p
        if let alg = p.aeadAlgorithm {
            aead = try AEADCipher(alg, key: BodyParameters.aeadKey(alg, p.key), encrypting: false)
            lengthAEAD = p.authenticatedLength
                ? try AEADCipher(alg, key: BodyParameters.aeadKey(alg, KDF.key16(p.requestKey, KDFLabel.authLength)), encrypting: false)
                : nil
        } else {
            aead = nil
            lengthAEAD = nil
        }
        self.cfb = p.cipher == .legacy ? try (cfb ?? AESCFBStream(key: p.key, iv: p.iv, encrypting: false)) : nil
        nonce = ChunkNonce(iv: p.iv)
        lengthNonce = ChunkNonce(iv: p.requestIV)
        mask = SHAKE128(seed: p.iv)
        // `ranges` grows to the most chunks one read has held and keeps that storage; reserving
        // 64 up front cost every connection 1 KiB, idle ones included.
    }

    /// Frees the AEAD ciphers' keyed contexts while the connection is quiet (AEADCipher.releaseContext);
    /// the next chunk keys them again. A legacy CFB stream keeps its position in its context and stays.
    public func releaseCipherContexts() {
        aead?.releaseContext()
        lengthAEAD?.releaseContext()
    }

    /// Bytes held back waiting for the rest of a chunk.
    public var bufferedBytes: Int { leftover?.readableBytes ?? 0 }

    /// Feeds newly received bytes. `emit` gets plaintext (one slice per call in stream mode, one per
    /// datagram in packet mode). Returns true once the end-of-stream chunk has been seen; bytes after
    /// it are ignored.
    @discardableResult
    public func decode(_ incoming: inout ByteBuffer, emit: (ByteBuffer) throws -> Void) throws -> Bool {
        if finished { incoming.moveReaderIndex(to: incoming.writerIndex); return true }
        let p = parameters
        if p.cipher == .legacy {
            // CFB covers the whole stream, so decrypt what arrived before any framing (§9.10).
            incoming.withReadableBytesInPlace { cfb!.apply($0) }
        }
        if !p.chunked {
            if incoming.readableBytes > 0 { try emit(incoming) }
            incoming.moveReaderIndex(to: incoming.writerIndex)
            return false
        }
        // 1. Complete a chunk left over from the previous read, copying into it only the bytes it
        //    still needs (at most one chunk), never the whole new read.
        while var l = leftover, incoming.readableBytes > 0, !finished {
            leftover = nil
            var part = incoming.readSlice(length: min(bytesNeeded(have: l.readableBytes), incoming.readableBytes))!
            l.writeBuffer(&part)
            try process(&l, emit: emit)
            if l.readableBytes > 0 && !finished { leftover = l }
        }
        // 2. The rest of the read is decrypted in place.
        if incoming.readableBytes > 0 && !finished {
            var buffer = incoming
            incoming.moveReaderIndex(to: incoming.writerIndex)
            try process(&buffer, emit: emit)
            if buffer.readableBytes > 0 && !finished {
                // Keep the partial chunk in a small buffer of our own: holding a slice would pin the
                // whole receive buffer and make the next append copy all of it.
                var own = ByteBufferAllocator().buffer(capacity: max(buffer.readableBytes, 2048))
                own.writeBuffer(&buffer)
                leftover = own
            }
        }
        incoming.moveReaderIndex(to: incoming.writerIndex)
        return finished
    }

    /// Bytes to add to a leftover of `have` bytes before it holds the next complete unit: the
    /// length field, or (once the length is known) the chunk body.
    private func bytesNeeded(have: Int) -> Int {
        if let p = pending { return max(1, p.lval - have) }
        return max(1, (lengthAEAD != nil ? 18 : 2) - have)
    }

    /// Decodes every complete chunk at the front of `buffer` in place and emits the plaintext;
    /// moves the reader index past what it consumed.
    private func process(_ buffer: inout ByteBuffer, emit: (ByteBuffer) throws -> Void) throws {
        let p = parameters
        ranges.removeAll(keepingCapacity: true)
        var consumed = 0
        var compacted = 0
        try buffer.withReadableBytesInPlace { raw in
            let base = raw.baseAddress!
            let end = raw.count
            var pos = 0
            while !finished {
                let lval: Int, pad: Int
                if let pnd = pending {
                    (lval, pad) = pnd
                } else {
                    guard let (l, pd, size) = try readLength(base + pos, available: end - pos) else { break }
                    pos += size
                    lval = l
                    pad = pd
                    if isEnd(lval: lval, pad: pad) { finished = true; break }
                    guard lval >= p.overhead + pad else { throw DecodeError.badLength(lval) }
                    pending = (lval, pad)
                }
                guard end - pos >= lval else { break }
                pending = nil
                let payloadStart = pos + (p.cipher == .legacy ? 4 : 0)
                let payloadCount = lval - p.overhead - pad
                let payload = UnsafeMutableRawBufferPointer(start: base + payloadStart, count: payloadCount)
                if let aead {
                    let ok = nonce.withNext { n in aead.open(nonce: n, data: payload, tag: base + payloadStart + payloadCount) }
                    guard ok else { throw DecodeError.authenticationFailed }
                } else if p.cipher == .legacy {
                    let expected = UInt32(bigEndian: (base + pos).loadUnaligned(as: UInt32.self))
                    guard Checksum.fnv1a32(UnsafeRawBufferPointer(payload)) == expected else { throw DecodeError.badChecksum }
                }
                if p.packet {
                    ranges.append((payloadStart, payloadCount))
                } else if payloadCount > 0 {
                    if compacted != payloadStart { (base + compacted).copyMemory(from: base + payloadStart, byteCount: payloadCount) }
                    compacted += payloadCount
                }
                pos += lval
            }
            consumed = pos
        }
        let origin = buffer.readerIndex
        if p.packet {
            for r in ranges { try emit(buffer.getSlice(at: origin + r.start, length: r.count)!) }
        } else if compacted > 0 {
            try emit(buffer.getSlice(at: origin, length: compacted)!)
        }
        buffer.moveReaderIndex(forwardBy: consumed)
    }

    private func isEnd(lval: Int, pad: Int) -> Bool {
        switch parameters.cipher {
        case .none where !parameters.packet: lval == 0
        default: lval == parameters.overhead + pad
        }
    }

    /// Reads the length field if it is complete: (Lval, padding, field size). Draws the padding
    /// length before the length mask, as the writer does (§9.3).
    private func readLength(_ at: UnsafeMutableRawPointer, available: Int) throws -> (Int, Int, Int)? {
        let p = parameters
        let size = lengthAEAD != nil ? 18 : 2
        guard available >= size else { return nil }
        let noneStream = p.cipher == .none && !p.packet
        let pad = (p.padding && !noneStream) ? Int(mask.next() % 64) : 0
        if let lengthAEAD {
            let ok = lengthNonce.withNext { n in
                lengthAEAD.open(nonce: n, data: UnsafeMutableRawBufferPointer(start: at, count: 2), tag: at + 2)
            }
            guard ok else { throw DecodeError.authenticationFailed }
            return (Int(UInt16(bigEndian: at.loadUnaligned(as: UInt16.self))) + 16, pad, size)
        }
        var v = UInt16(bigEndian: at.loadUnaligned(as: UInt16.self))
        if p.masking { v ^= mask.next() }
        return (Int(v), pad, size)
    }
}
