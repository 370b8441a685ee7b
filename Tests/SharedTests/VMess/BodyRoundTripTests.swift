import NIOCore
import XCTest
@testable import Shared

/// Every body mode and option set: encode, then decode whole, one byte at a time and split at every
/// offset; hostile inputs end in a typed error.
final class BodyRoundTripTests: XCTestCase {
    let allocator = ByteBufferAllocator()

    struct Mode: CustomStringConvertible {
        var security: Security
        var options: UInt8
        var command: RequestCommand
        var description: String { "\(security) opt=\(String(options, radix: 16)) \(command)" }
    }

    static let modes: [Mode] = {
        var m: [Mode] = []
        for cmd in [RequestCommand.tcp, .udp] {
            for sec in [Security.aes128GCM, .chacha20Poly1305] {
                for o: UInt8 in [0x00, 0x01, 0x05, 0x0D, 0x11, 0x15, 0x1D] { m.append(Mode(security: sec, options: o, command: cmd)) }
            }
            for o: UInt8 in [0x00, 0x01, 0x05, 0x0D] {
                m.append(Mode(security: .none, options: o, command: cmd))
                m.append(Mode(security: .legacy, options: o, command: cmd))
            }
        }
        return m
    }()

    func header(_ m: Mode) -> RequestHeader {
        RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 1,
                      options: RequestOptions(rawValue: m.options), security: m.security, command: m.command,
                      port: 80, address: .ipv4([127, 0, 0, 1]))
    }

    /// Encodes `messages` (datagrams for UDP, stream pieces for TCP) and the end chunk.
    /// `releasingContexts`: the cipher contexts are freed before every message and the end, as a
    /// quiet connection's are.
    func wire(_ m: Mode, _ h: RequestHeader, _ messages: [[UInt8]], releasingContexts: Bool = false) throws -> [UInt8] {
        let enc = try BodyEncoder(.request(h))
        var out = allocator.buffer(capacity: 1024)
        for msg in messages {
            if releasingContexts { enc.releaseCipherContexts() }
            if m.command == .udp {
                XCTAssertTrue(try msg.withUnsafeBytes { try enc.encodeDatagram($0, into: &out) })
            } else {
                var b = allocator.buffer(bytes: msg)
                var e = try enc.encode(&b, allocator: allocator)
                out.writeBuffer(&e)
            }
        }
        if releasingContexts { enc.releaseCipherContexts() }
        try enc.encodeEnd(into: &out)
        return out.bytes
    }

    func decode(_ h: RequestHeader, _ pieces: [ArraySlice<UInt8>]) throws -> (messages: [[UInt8]], ended: Bool) {
        let dec = try BodyDecoder(.request(h))
        var got: [[UInt8]] = []
        var ended = false
        for p in pieces {
            var b = allocator.buffer(bytes: p)
            if try dec.decode(&b, emit: { got.append($0.bytes) }) { ended = true }
        }
        return (got, ended)
    }

    func testAllModesWholeAndDripFed() throws {
        for m in Self.modes {
            let h = header(m)
            let messages: [[UInt8]] = [Array("hello".utf8), SecureRandom.bytes(1), SecureRandom.bytes(1500), SecureRandom.bytes(700)]
                + (m.command == .tcp ? [SecureRandom.bytes(20_000)] : [])
            let w = try wire(m, h, messages)
            let chunkedEnd = m.security == .aes128GCM || m.security == .chacha20Poly1305 || m.options & 1 == 1
            let expected = messages.flatMap { $0 }
            // Whole.
            let whole = try decode(h, [w[...]])
            XCTAssertEqual(whole.messages.flatMap { $0 }, expected, "\(m)")
            XCTAssertEqual(whole.ended, chunkedEnd, "\(m)")
            if m.command == .udp && chunkedEnd { XCTAssertEqual(whole.messages, messages, "\(m) datagram boundaries") }
            // One byte at a time.
            let drip = try decode(h, w.indices.map { w[$0...$0] })
            XCTAssertEqual(drip.messages.flatMap { $0 }, expected, "\(m) drip")
            if m.command == .udp && chunkedEnd { XCTAssertEqual(drip.messages, messages, "\(m) drip boundaries") }
            // Split at every offset (a subset for the long TCP stream to keep the test quick).
            let step = max(1, w.count / 300)
            for cut in stride(from: 0, through: w.count, by: step) {
                let r = try decode(h, [w[0..<cut], w[cut...]])
                XCTAssertEqual(r.messages.flatMap { $0 }, expected, "\(m) split \(cut)")
            }
        }
    }

    /// A quiet connection frees its ciphers' contexts (releaseCipherContexts) between any two
    /// chunks, on either side: the bytes on the wire are the same as without, and decoding goes on.
    func testReleasedCipherContextsAreKeyedAgain() throws {
        for m in Self.modes where m.security == .aes128GCM || m.security == .chacha20Poly1305 {
            let h = header(m)
            let messages: [[UInt8]] = [Array("first".utf8), SecureRandom.bytes(1500), SecureRandom.bytes(3)]
            // An encoder whose contexts are freed before every message: what it sends decodes to
            // the messages, and without padding (whose bytes are random) it is the same bytes as
            // an encoder that kept them.
            let reference = try wire(m, h, messages, releasingContexts: true)
            XCTAssertEqual(try decode(h, [reference[...]]).messages.flatMap { $0 }, messages.flatMap { $0 }, "\(m)")
            if m.options & 0x08 == 0 {
                XCTAssertEqual(try wire(m, h, messages), reference, "\(m)")
            }
            // A decoder freed between pieces (mid-chunk included) reads it all.
            let dec = try BodyDecoder(.request(h))
            var got: [UInt8] = []
            var ended = false
            for piece in stride(from: 0, to: reference.count, by: 97).map({ reference[$0..<min($0 + 97, reference.count)] }) {
                dec.releaseCipherContexts()
                var b = allocator.buffer(bytes: piece)
                if try dec.decode(&b, emit: { got += $0.bytes }) { ended = true }
            }
            XCTAssertEqual(got, messages.flatMap { $0 }, "\(m)")
            XCTAssertTrue(ended, "\(m)")
        }
        let cipher = try AEADCipher(.aes128GCM, key: SecureRandom.bytes(16), encrypting: true)
        XCTAssertTrue(cipher.holdsContext)
        cipher.releaseContext()
        XCTAssertFalse(cipher.holdsContext)
        cipher.releaseContext()
        _ = try cipher.seal(nonce: [UInt8](repeating: 0, count: 12), plaintext: [1, 2, 3])
        XCTAssertTrue(cipher.holdsContext)
    }

    /// Stream chunks stay within BodyEncoder.maxChunkSize (16 KiB, what every peer was shown to read)
    /// whatever the options, padding at its largest included.
    func testChunksStayWithinTheChunkSize() throws {
        XCTAssertEqual(BodyEncoder.maxChunkSize, 16_384)
        for (opt, payload) in [(UInt8(0x0D), 16_384 - 16 - 2 - 64), (0x05, 16_384 - 16 - 2), (0x1D, 16_384 - 16 - 18 - 64)] {
            let h = header(Mode(security: .aes128GCM, options: opt, command: .tcp))
            let enc = try BodyEncoder(.request(h))
            XCTAssertEqual(enc.maxPayloadPerChunk, payload)
        }
    }

    func testTamperedChunkFailsAuthentication() throws {
        for sec in [Security.aes128GCM, .chacha20Poly1305, .legacy] {
            let m = Mode(security: sec, options: 0x0D, command: .tcp)
            let h = header(m)
            var w = try wire(m, h, [SecureRandom.bytes(100)])
            w[10] ^= 0x40
            XCTAssertThrowsError(try decode(h, [w[...]]), "\(sec)") { error in
                XCTAssertTrue([BodyDecoder.DecodeError.authenticationFailed, .badChecksum].contains(error as? BodyDecoder.DecodeError))
            }
        }
    }

    func testHostileLengthsAndGarbage() throws {
        // Random garbage under every mode: either a typed error or waiting for more, never a crash,
        // and never more than one chunk held back.
        for m in Self.modes {
            let h = header(m)
            for _ in 0..<20 {
                let junk = SecureRandom.bytes(Int.random(in: 1..<3000))
                let dec = try BodyDecoder(.request(h))
                var b = allocator.buffer(bytes: junk)
                do {
                    try dec.decode(&b) { _ in }
                } catch is BodyDecoder.DecodeError {
                } catch {
                    XCTFail("unexpected \(error)")
                }
                XCTAssertLessThanOrEqual(dec.bufferedBytes, 65_535 + 34)
            }
        }
        // Length shorter than the tag: typed error.
        let h = header(Mode(security: .aes128GCM, options: 0x01, command: .tcp))
        let dec = try BodyDecoder(.request(h))
        var b = allocator.buffer(bytes: [0x00, 0x05, 1, 2, 3, 4, 5])
        XCTAssertThrowsError(try dec.decode(&b) { _ in }) { XCTAssertEqual($0 as? BodyDecoder.DecodeError, .badLength(5)) }
    }

    func testTruncatedStreamWaitsForMore() throws {
        let m = Mode(security: .aes128GCM, options: 0x0D, command: .tcp)
        let h = header(m)
        let w = try wire(m, h, [SecureRandom.bytes(3000)])
        let r = try decode(h, [w[0..<(w.count - 200)]])
        XCTAssertFalse(r.ended)
        XCTAssertLessThan(r.messages.flatMap { $0 }.count, 3000)
    }

    /// Regression (issue 7): datagrams over 2 KB are carried whole, in every packet mode, up to what
    /// the 16-bit length field can say; one that cannot fit is refused whole (nothing written).
    func testLargeDatagramsRoundTripWholeAndOversizedAreDropped() throws {
        let aead: Set<Security> = [.aes128GCM, .chacha20Poly1305]
        // Chunked packet modes only: without S there is no framing to carry datagram boundaries.
        for m in Self.modes where m.command == .udp && (aead.contains(m.security) || m.options & 0x01 != 0) {
            let h = header(m)
            let overhead = (m.security == .aes128GCM || m.security == .chacha20Poly1305) ? 16 : (m.security == .legacy ? 4 : 0)
            let padding = (m.options & 0x0C) == 0x0C ? 63 : 0
            let largest = 65_535 - overhead - padding
            let sizes = [2049, 4096, 8192, 65_507, largest].filter { $0 <= largest }
            let messages = sizes.map { SecureRandom.bytes($0) }
            let w = try wire(m, h, messages)
            let r = try decode(h, [w[...]])
            XCTAssertEqual(r.messages, messages, "\(m)")
            let enc = try BodyEncoder(.request(h))
            var out = allocator.buffer(capacity: 10)
            XCTAssertFalse(try SecureRandom.bytes(largest + 1).withUnsafeBytes { try enc.encodeDatagram($0, into: &out) }, "\(m)")
            XCTAssertEqual(out.readableBytes, 0)
        }
    }

    func testPaddingWithoutMaskingIsRefused() {
        let h = header(Mode(security: .aes128GCM, options: 0x09, command: .tcp))
        XCTAssertThrowsError(try BodyParameters.request(h))
        let z = header(Mode(security: .zero, options: 0x00, command: .tcp))
        XCTAssertThrowsError(try BodyParameters.request(z))
    }
}
