import NIOCore
import XCTest
@testable import Shared

/// ProxyProtocolHeader against hand-built headers from haproxy's proxy-protocol.txt: every form it
/// accepts, every malformed variant, and every input fed at every split (a prefix of a valid header
/// is `needMore`, never `invalid` nor `parsed`).
final class ProxyProtocolHeaderTests: XCTestCase {
    typealias Result = ProxyProtocolHeader.ParseResult

    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func v2(command: UInt8 = 0x21, family: UInt8, body: [UInt8]) -> [UInt8] {
        signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// 198.51.100.7:51000 → 203.0.113.1:443
    static let v4Addresses: [UInt8] = [198, 51, 100, 7, 203, 0, 113, 1, 0xC7, 0x38, 0x01, 0xBB]
    /// [2001:db8::7]:51000 → [2001:db8::1]:443
    static let v6Addresses: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
        + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1] + [0xC7, 0x38, 0x01, 0xBB]

    func parse(_ bytes: [UInt8], maxLength: Int = ProxyProtocolHeader.defaultMaxLength) -> Result {
        bytes.withUnsafeBytes { ProxyProtocolHeader.parse($0, maxLength: maxLength) }
    }

    func client(_ ip: String, _ port: Int) throws -> ProxyProtocolHeader.Origin {
        .client(try SocketAddress(ipAddress: ip, port: port))
    }

    /// The whole header parses to `expected`; every proper prefix asks for more; payload behind it is
    /// left alone (`consumed` is the header's length).
    func assertHeader(_ header: [UInt8], _ expected: ProxyProtocolHeader.Origin, file: StaticString = #filePath, line: UInt = #line) {
        for cut in 0..<header.count {
            XCTAssertEqual(parse(Array(header[..<cut])), .needMore, "prefix \(cut)", file: file, line: line)
        }
        XCTAssertEqual(parse(header), .parsed(expected, consumed: header.count), file: file, line: line)
        XCTAssertEqual(parse(header + Array("VMESS".utf8)), .parsed(expected, consumed: header.count), file: file, line: line)
    }

    /// Invalid once whole, and no prefix of it is `parsed`; a prefix is either `needMore` or the same error.
    func assertInvalid(_ bytes: [UInt8], _ error: ProxyProtocolError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(parse(bytes), .invalid(error), file: file, line: line)
        for cut in 0..<bytes.count {
            let r = parse(Array(bytes[..<cut]))
            XCTAssertTrue(r == .needMore || r == .invalid(error), "prefix \(cut): \(r)", file: file, line: line)
        }
    }

    // MARK: v1

    func testV1TCP4() throws {
        assertHeader(Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n".utf8), try client("198.51.100.7", 51000))
    }

    func testV1TCP6() throws {
        assertHeader(Array("PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n".utf8), try client("2001:db8::7", 51000))
    }

    func testV1Unknown() {
        assertHeader(Array("PROXY UNKNOWN\r\n".utf8), .peer)
        assertHeader(Array("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n".utf8), .peer)
    }

    func testV1LongestLine() throws {
        // The spec's worst case: 107 bytes.
        let line = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
        XCTAssertEqual(line.utf8.count, 104)
        assertHeader(Array(line.utf8), try client("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))
        let unknown = "PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n"
        XCTAssertEqual(unknown.utf8.count, 107)
        assertHeader(Array(unknown.utf8), .peer)
    }

    func testV1Malformed() {
        for line in [
            "PROXY TCP4 198.51.100.7 203.0.113.1 51000\r\n",        // a field short
            "PROXY TCP4 198.51.100.7 203.0.113.1 51000 443 1\r\n",  // a field too many
            "PROXY TCP4  198.51.100.7 203.0.113.1 51000 443\r\n",   // two spaces
            "PROXY TCP4 198.51.100.7 203.0.113.1 51000 443 \r\n",   // trailing space
            "PROXY TCP5 198.51.100.7 203.0.113.1 51000 443\r\n",
            "PROXY tcp4 198.51.100.7 203.0.113.1 51000 443\r\n",
            "PROXY TCP4 2001:db8::7 2001:db8::1 51000 443\r\n",     // family mismatch
            "PROXY TCP6 198.51.100.7 203.0.113.1 51000 443\r\n",
            "PROXY TCP4 198.51.100.07 203.0.113.1 51000 443\r\n",   // leading zero in an octet
            "PROXY TCP4 198.51.100.256 203.0.113.1 51000 443\r\n",
            "PROXY TCP4 example.com 203.0.113.1 51000 443\r\n",
            "PROXY TCP4 198.51.100.7 203.0.113.1 65536 443\r\n",
            "PROXY TCP4 198.51.100.7 203.0.113.1 051000 443\r\n",  // leading zero in a port
            "PROXY TCP4 198.51.100.7 203.0.113.1 +5100 443\r\n",
            "PROXY TCP4 198.51.100.7 203.0.113.1 51000 -1\r\n",
            "PROXY TCP6 fe80::1%eth0 2001:db8::1 51000 443\r\n",   // zone
            "PROXY \r\n",
            "PROXY UNKNOWNX\r\n",
        ] {
            assertInvalid(Array(line.utf8), .malformedV1)
        }
        // CR not followed by LF; a NUL or a bare LF in the line.
        assertInvalid(Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\rX".utf8), .malformedV1)
        assertInvalid(Array("PROXY TCP4 198.51.100.7\0 203.0.113.1 51000 443\r\n".utf8), .malformedV1)
        assertInvalid(Array("PROXY UNKNOWN\n".utf8), .malformedV1)
    }

    func testV1TooLong() {
        assertInvalid(Array(("PROXY UNKNOWN " + String(repeating: "x", count: 200)).utf8), .tooLong)
        // 108 bytes with its CRLF: one over.
        let line = "PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n"
        XCTAssertEqual(line.utf8.count, 108)
        assertInvalid(Array(line.utf8), .tooLong)
    }

    func testNoSignature() {
        assertInvalid(Array("GET / HTTP/1.1\r\n\r\n".utf8), .noSignature)
        assertInvalid(Array("PROXZ TCP4".utf8), .noSignature)
        assertInvalid([0x16, 0x03, 0x01, 0x02, 0x00], .noSignature)  // a TLS ClientHello
        assertInvalid([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B], .noSignature)
        assertInvalid(Array("PROXY".utf8) + [0], .noSignature)
    }

    // MARK: v2

    func testV2ProxyIPv4() throws {
        assertHeader(Self.v2(family: 0x11, body: Self.v4Addresses), try client("198.51.100.7", 51000))
        // UDP over IPv4: still the client's address.
        assertHeader(Self.v2(family: 0x12, body: Self.v4Addresses), try client("198.51.100.7", 51000))
    }

    func testV2ProxyIPv6() throws {
        assertHeader(Self.v2(family: 0x21, body: Self.v6Addresses), try client("2001:db8::7", 51000))
    }

    func testV2TLVsAreSkipped() throws {
        // ALPN "h2", authority "example.com", a NOOP of zero length, a unique id of 128 bytes.
        let tlvs: [UInt8] = [0x01, 0x00, 0x02] + Array("h2".utf8) + [0x02, 0x00, 0x0B] + Array("example.com".utf8)
            + [0x04, 0x00, 0x00] + [0x05, 0x00, 0x80] + [UInt8](repeating: 0xAB, count: 128)
        assertHeader(Self.v2(family: 0x11, body: Self.v4Addresses + tlvs), try client("198.51.100.7", 51000))
        assertHeader(Self.v2(family: 0x21, body: Self.v6Addresses + tlvs), try client("2001:db8::7", 51000))
    }

    func testV2LocalUsesThePeer() {
        // HAProxy's health checks: LOCAL, family UNSPEC, no addresses.
        assertHeader(Self.v2(command: 0x20, family: 0x00, body: []), .peer)
        // LOCAL with addresses (or anything) in its block: ignored.
        assertHeader(Self.v2(command: 0x20, family: 0x11, body: Self.v4Addresses), .peer)
        assertHeader(Self.v2(command: 0x20, family: 0x11, body: [1, 2, 3]), .peer)
    }

    func testV2UnspecAndUnixUseThePeer() {
        assertHeader(Self.v2(family: 0x00, body: []), .peer)
        assertHeader(Self.v2(family: 0x31, body: [UInt8](repeating: 0x2F, count: 216)), .peer)
    }

    func testV2Malformed() {
        assertInvalid(Self.v2(command: 0x11, family: 0x11, body: Self.v4Addresses), .badVersion(0x11))
        assertInvalid(Self.v2(command: 0x31, family: 0x11, body: Self.v4Addresses), .badVersion(0x31))
        assertInvalid(Self.v2(command: 0x22, family: 0x11, body: Self.v4Addresses), .badCommand(0x22))
        assertInvalid(Self.v2(command: 0x2F, family: 0x11, body: Self.v4Addresses), .badCommand(0x2F))
        for family: UInt8 in [0x01, 0x10, 0x13, 0x20, 0x23, 0x33, 0x41, 0xFF] {
            assertInvalid(Self.v2(family: family, body: Self.v4Addresses), .badFamily(family))
        }
        // len shorter than the family's addresses.
        assertInvalid(Self.v2(family: 0x11, body: Array(Self.v4Addresses.prefix(11))), .shortAddresses(11))
        assertInvalid(Self.v2(family: 0x21, body: Self.v4Addresses), .shortAddresses(12))
        assertInvalid(Self.v2(family: 0x31, body: Self.v6Addresses), .shortAddresses(36))
        // TLVs that do not tile the rest: a lone type byte, a length past the end.
        assertInvalid(Self.v2(family: 0x11, body: Self.v4Addresses + [0x04]), .badTLV)
        assertInvalid(Self.v2(family: 0x11, body: Self.v4Addresses + [0x04, 0x00]), .badTLV)
        assertInvalid(Self.v2(family: 0x11, body: Self.v4Addresses + [0x01, 0x00, 0x05, 0x68, 0x32]), .badTLV)
        assertInvalid(Self.v2(family: 0x11, body: Self.v4Addresses + [0x01, 0xFF, 0xFF]), .badTLV)
    }

    func testV2LengthBound() throws {
        // Refused as soon as the fixed part shows a length past the bound, before the body arrives.
        let header = Self.v2(family: 0x11, body: Self.v4Addresses + [0x04, 0x0F, 0xE2] + [UInt8](repeating: 0, count: 4066))
        XCTAssertEqual(header.count, 4097)
        XCTAssertEqual(parse(Array(header.prefix(16))), .invalid(.tooLong))
        XCTAssertEqual(parse(Self.signature + [0x21, 0x11, 0xFF, 0xFF]), .invalid(.tooLong))
        // Exactly at the bound: fine.
        let fits = Self.v2(family: 0x11, body: Self.v4Addresses + [0x04, 0x0F, 0xE1] + [UInt8](repeating: 0, count: 4065))
        XCTAssertEqual(fits.count, 4096)
        XCTAssertEqual(parse(fits), .parsed(try client("198.51.100.7", 51000), consumed: 4096))
        XCTAssertEqual(parse(fits, maxLength: 4095), .invalid(.tooLong))
    }

    func testEmptyInputNeedsMore() {
        XCTAssertEqual(parse([]), .needMore)
    }
}
