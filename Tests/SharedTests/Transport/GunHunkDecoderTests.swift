import NIOCore
import XCTest
@testable import Shared

/// The gun (gRPC transport) stream decoder: round trips with the encoder's prefix, every split of the
/// input, MultiHunk messages with foreign fields, and hostile lengths and encodings.
final class GunHunkDecoderTests: XCTestCase {
    /// One gun message for `payload`, as vmessd (and sing-box's gun-lite) writes it.
    func message(_ payload: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        GunHunkEncoder.writePrefix(length: payload.count, into: &buffer)
        buffer.writeBytes(payload)
        return Array(buffer.readableBytesView)
    }

    func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    /// A gRPC message around a raw protobuf body.
    func grpc(_ body: [UInt8], flag: UInt8 = 0) -> [UInt8] {
        let n = UInt32(body.count)
        return [flag, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + body
    }

    func field(_ number: UInt64, bytes: [UInt8]) -> [UInt8] { varint(number << 3 | 2) + varint(UInt64(bytes.count)) + bytes }

    /// Decodes `input` fed in `pieces`; the tunnelled bytes, or the error.
    func decode(_ pieces: [[UInt8]], maximum: Int = GunHunkDecoder.defaultMaximumMessageSize) -> Result<[UInt8], Error> {
        var decoder = GunHunkDecoder(maximumMessageSize: maximum)
        var out: [UInt8] = []
        do {
            for piece in pieces {
                try decoder.feed(ByteBuffer(bytes: piece)) { out += $0.readableBytesView; return true }
                XCTAssertLessThanOrEqual(decoder.heldByteCount, 20)
            }
            return .success(out)
        } catch {
            return .failure(error)
        }
    }

    func testPrefixMatchesTheProtobufEncoding() {
        XCTAssertEqual(message([0x41, 0x42]), [0, 0, 0, 0, 4, 0x0A, 2, 0x41, 0x42])
        XCTAssertEqual(Array(message([UInt8](repeating: 7, count: 300)).prefix(8)), [0, 0, 0, 1, 0x2F, 0x0A, 0xAC, 0x02])
        XCTAssertEqual(message([]), [0, 0, 0, 0, 2, 0x0A, 0])
    }

    func testRoundTripAtEverySplit() throws {
        let payloads: [[UInt8]] = [Array("hello".utf8), [], (0..<200).map { UInt8($0) }, [UInt8](repeating: 0xEE, count: 16 * 1024 + 3)]
        let stream = payloads.flatMap(message)
        let expected = payloads.flatMap { $0 }
        XCTAssertEqual(try decode([stream]).get(), expected)
        // Two pieces at every offset inside the headers and around the boundaries (the long payload
        // in between is sampled), then one byte at a time.
        for cut in 0...stream.count where cut < 300 || cut > stream.count - 40 || cut % 97 == 0 {
            XCTAssertEqual(try decode([Array(stream[..<cut]), Array(stream[cut...])]).get(), expected, "cut at \(cut)")
        }
        let short = Array(stream.prefix(260))
        XCTAssertEqual(try decode(short.map { [$0] }).get(), try decode([short]).get())
    }

    func testMultiHunkAndForeignFieldsAreHandled() throws {
        // TunMulti: several data fields in one message; other field numbers of every wire type skipped.
        let body = field(1, bytes: Array("ab".utf8)) + varint(2 << 3 | 0) + varint(300)
            + varint(3 << 3 | 1) + [UInt8](repeating: 9, count: 8) + field(4, bytes: Array("skip".utf8))
            + varint(5 << 3 | 5) + [1, 2, 3, 4] + field(1, bytes: Array("cd".utf8)) + field(1, bytes: [])
        let stream = grpc(body) + message(Array("ef".utf8))
        for cut in 0...stream.count {
            XCTAssertEqual(try decode([Array(stream[..<cut]), Array(stream[cut...])]).get(), Array("abcdef".utf8), "cut at \(cut)")
        }
    }

    func testHostileInputsAreRejected() {
        func failure(_ bytes: [UInt8], maximum: Int = 1 << 20) -> GunHunkDecoder.Failure? {
            guard case .failure(let error) = decode([bytes], maximum: maximum) else { return nil }
            return error as? GunHunkDecoder.Failure
        }
        XCTAssertEqual(failure(grpc(field(1, bytes: [1]), flag: 1)), .compressed)
        XCTAssertEqual(failure([0, 0xFF, 0xFF, 0xFF, 0xFF]), .messageTooLarge(0xFFFF_FFFF))
        XCTAssertEqual(failure([0, 0, 0x10, 0, 1], maximum: 1 << 20), .messageTooLarge(0x100001))
        // A field longer than its message, and a length beyond any message.
        XCTAssertEqual(failure(grpc([0x0A, 5, 1, 2])), .fieldOverrunsMessage)
        XCTAssertEqual(failure(grpc([0x0A] + varint(UInt64(UInt32.max)))), .fieldOverrunsMessage)
        XCTAssertEqual(failure(grpc([0x0A] + varint(UInt64.max))), .fieldOverrunsMessage)
        XCTAssertEqual(failure(grpc([0x21] + [1, 2, 3])), .fieldOverrunsMessage)  // fixed64 in 3 bytes
        // Varints: eleven bytes, or cut off by the end of the message.
        XCTAssertEqual(failure(grpc([0x0A] + [UInt8](repeating: 0xFF, count: 10) + [1])), .badVarint)
        XCTAssertEqual(failure(grpc([0x0A, 0x80])), .badVarint)
        XCTAssertEqual(failure(grpc([0x8A])), .badVarint)
        // Groups and undefined wire types; data that is not length-delimited.
        XCTAssertEqual(failure(grpc([0x0B])), .badWireType(3))
        XCTAssertEqual(failure(grpc([0x0E])), .badWireType(6))
        XCTAssertEqual(failure(grpc([0x08, 1])), .badWireType(0))
    }

    func testBoundaryTracksIncompleteMessages() throws {
        var decoder = GunHunkDecoder()
        let whole = message(Array("xyz".utf8))
        XCTAssertTrue(decoder.isAtMessageBoundary)
        try decoder.feed(ByteBuffer(bytes: whole.prefix(3))) { _ in true }
        XCTAssertFalse(decoder.isAtMessageBoundary, "a held header is not a boundary")
        try decoder.feed(ByteBuffer(bytes: whole[3..<9])) { _ in true }
        XCTAssertFalse(decoder.isAtMessageBoundary, "inside the data")
        try decoder.feed(ByteBuffer(bytes: whole[9...])) { _ in true }
        XCTAssertTrue(decoder.isAtMessageBoundary)
    }

    func testEmitCanStopDecoding() throws {
        var decoder = GunHunkDecoder()
        var seen = 0
        try decoder.feed(ByteBuffer(bytes: message([1]) + message([2]) + message([3]))) { _ in
            seen += 1
            return false
        }
        XCTAssertEqual(seen, 1)
    }
}
