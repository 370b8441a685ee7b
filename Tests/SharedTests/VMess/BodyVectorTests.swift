import NIOCore
import XCTest
@testable import Shared

/// The §14 body vectors. Padding bytes are random on the wire and zeros in the vectors, so the
/// comparison zeroes the padding region (its length is known) before comparing.
final class BodyVectorTests: XCTestCase {
    let allocator = ByteBufferAllocator()

    func header(options: UInt8, security: Security = .aes128GCM, command: RequestCommand = .tcp) -> RequestHeader {
        RequestHeader(requestIV: range(0x20, 16), requestKey: range(0x40, 16), responseAuth: 0x5A,
                      options: RequestOptions(rawValue: options), security: security, command: command, port: 443,
                      address: .domain("www.example.com"))
    }

    func encode(_ enc: BodyEncoder, _ text: String) throws -> [UInt8] {
        var b = allocator.buffer(bytes: Array(text.utf8))
        return try enc.encode(&b, allocator: allocator).bytes
    }

    func zeroTail(_ b: [UInt8], _ n: Int) -> [UInt8] { Array(b[0..<(b.count - n)]) + [UInt8](repeating: 0, count: n) }

    func testGCMRequestChunkAndEnd() throws {
        let enc = try BodyEncoder(.request(header(options: 0x0D)))
        let c0 = try encode(enc, "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(hexString(zeroTail(c0, 8)),
                       "221f" + "f82abca04633f93bf2fd1e72f048917402554459e48b5c7e2ce2f8ca30268f19da9d" + "0000000000000000")
        var end = allocator.buffer(capacity: 64)
        try enc.encodeEnd(into: &end)
        XCTAssertEqual(hexString(zeroTail(end.bytes, 2)), "b186" + "ea76244a8fb12322b2f7984ce173d832" + "0000")
    }

    func testGCMResponseChunk() throws {
        let h = header(options: 0x0D)
        let enc = try BodyEncoder(.response(h, keys: ResponseHeader.bodyKeys(request: h, legacy: false)))
        let c0 = try encode(enc, "HTTP/1.1 200 OK\r\n\r\n")
        XCTAssertEqual(c0.count, 2 + 19 + 16 + 57)
        XCTAssertEqual(hexString(Array(c0[0..<37])), "a129" + "c6e9e5e2410342f5477d17c713fb926255092eada4f59bd5fdf39836a3d545977c6fe2")
    }

    func testChaChaChunk() throws {
        XCTAssertEqual(hexString(BodyParameters.aeadKey(.chacha20Poly1305, range(0x40, 16))),
                       "0d712dea46b6358a634362733f55458700926b1d38a940536af26798cb9511af")
        let enc = try BodyEncoder(.request(header(options: 0x05, security: .chacha20Poly1305)))
        XCTAssertEqual(hexString(try encode(enc, "hello")), "e49d" + "8cc660618974e0ae3eb98984ef1e95b228bf6e1433")
    }

    func testAuthenticatedLengthChunk() throws {
        XCTAssertEqual(hexString(KDF.key16(range(0x40, 16), KDFLabel.authLength)), "f1f11feec17002903e2c26cad4f2d9eb")
        let enc = try BodyEncoder(.request(header(options: 0x1D)))
        let c0 = try encode(enc, "hello")
        XCTAssertEqual(hexString(zeroTail(c0, 8)),
                       "1549ab240696d406b42f4c0d47d5e2efa400" + "d70a84ec068bc091ecf8ba84496cddd08e998526ce" + "0000000000000000")
    }

    func testDecoderReadsVectors() throws {
        let wire = hex("221f f82abca04633f93bf2fd1e72f048917402554459e48b5c7e2ce2f8ca30268f19da9d 0000000000000000"
                       + "b186 ea76244a8fb12322b2f7984ce173d832 0000")
        let dec = try BodyDecoder(.request(header(options: 0x0D)))
        var got: [UInt8] = []
        var buf = allocator.buffer(bytes: wire)
        let end = try dec.decode(&buf) { got += $0.bytes }
        XCTAssertTrue(end)
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "GET / HTTP/1.1\r\n\r\n")
    }
}
