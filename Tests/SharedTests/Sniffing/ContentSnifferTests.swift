// The content sniffers (inbound `sniffing`): HTTP Host, TLS server name, BitTorrent, over whole
// inputs, every prefix of them (the bytes arrive in reads of any size), and hostile variants.

@testable import Shared
import XCTest

final class ContentSnifferTests: XCTestCase {
    /// A ClientHello as OpenSSL 3.0 writes it (Python's ssl module, server_hostname "www.Example.com"):
    /// TLS 1.3 with key shares, session id, 517 bytes in one record.
    static let openSSLClientHello: [UInt8] = hex(([
        "1603010200010001fc0303b77ec6446bd42fed0f636646332f2e56b710d2ec9f3119f27bc8363288b8750720d9c14f9da597",
        "78bf78b6f9a18e3fa91f6891762ad21d3b20ab1dcdae1a3da3500024130213031301c02cc030c02bc02fcca9cca8c024c028",
        "c023c027009f009e006b006700ff0100018f00000014001200000f7777772e4578616d706c652e636f6d000b000403000102",
        "000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603",
        "080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d0002010100",
        "3300260024001d0020dd0934f5f551f07cb6992fbc5918fdb31c137245d47d9318f84bde4468d18f18001500de0000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000",
    ] as [String]).joined())

    func sniff(_ text: String) -> SniffResult { ContentSniffer.sniff(Array(text.utf8)[...]) }

    func testHTTPHost() {
        XCTAssertEqual(sniff("GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n"), .found(protocol: "http1", domain: "example.com"))
        XCTAssertEqual(sniff("post /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:example.com:8080\r\n"), .found(protocol: "http1", domain: "example.com"))
        XCTAssertEqual(sniff("CONNECT a:443 HTTP/1.1\nHost: [2001:db8::1]:443\n\n"), .found(protocol: "http1", domain: "2001:db8::1"))
        XCTAssertEqual(sniff("GET / HTTP/1.1\r\nHost: 2001:db8::2\r\n\r\n"), .found(protocol: "http1", domain: "2001:db8::2"))
        // A head that ends without Host, a Host without a name, a port that is not one: no name.
        XCTAssertEqual(sniff("GET / HTTP/1.0\r\nAccept: */*\r\n\r\nHost: late.example\r\n"), .unknown)
        XCTAssertEqual(sniff("GET / HTTP/1.1\r\nHost:   \r\n"), .unknown)
        XCTAssertEqual(sniff("GET / HTTP/1.1\r\nHost: a.example:80x\r\n"), .unknown)
        // Not yet decided: a method so far, or a head still coming.
        XCTAssertEqual(sniff("GE"), .needMore)
        XCTAssertEqual(sniff("OPTIONS"), .needMore)
        XCTAssertEqual(sniff("GET / HTTP/1.1\r\nAccept: */*\r\n"), .needMore)
        // Not HTTP: another verb, a method without its space, SSH's banner.
        XCTAssertEqual(sniff("FETCH / HTTP/1.1\r\nHost: a\r\n\r\n"), .unknown)
        XCTAssertEqual(sniff("GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), .unknown)
        XCTAssertEqual(sniff("SSH-2.0-OpenSSH_9.2\r\n"), .unknown)
    }

    func testTLSServerNameFromARealClientHello() {
        let hello = Self.openSSLClientHello
        XCTAssertEqual(ContentSniffer.sniff(hello[...]), .found(protocol: "tls", domain: "www.example.com"))
        // With application bytes behind it (they are not looked at).
        XCTAssertEqual(ContentSniffer.sniff((hello + [23, 3, 3, 0, 1, 0])[...]), .found(protocol: "tls", domain: "www.example.com"))
        // Every proper prefix waits for more: the bytes may come in reads of any size.
        for n in 0..<hello.count {
            XCTAssertEqual(ContentSniffer.sniff(hello[..<n]), .needMore, "prefix \(n)")
        }
    }

    func testTLSWithoutServerNameAndHostileLengths() {
        // A minimal ClientHello: version, random, no session id, one suite, null compression, and
        // the given extensions.
        func hello(extensions: [UInt8], extensionsLength: Int? = nil) -> [UInt8] {
            let extLen = extensionsLength ?? extensions.count
            var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + [0, 2, 0x13, 0x01] + [1, 0]
            body += [UInt8(extLen >> 8), UInt8(extLen & 0xFF)] + extensions
            let handshake: [UInt8] = [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
            return [22, 3, 1, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
        }
        func sni(_ name: String, listLength: Int? = nil, nameLength: Int? = nil) -> [UInt8] {
            let n = Array(name.utf8)
            let entry: [UInt8] = [0, UInt8((nameLength ?? n.count) >> 8), UInt8((nameLength ?? n.count) & 0xFF)] + n
            let list: [UInt8] = [UInt8((listLength ?? entry.count) >> 8), UInt8((listLength ?? entry.count) & 0xFF)] + entry
            return [0, 0, UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
        }
        let other: [UInt8] = [0, 0x2b, 0, 3, 2, 3, 4]  // supported_versions
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: other + sni("a.example"))[...]), .found(protocol: "tls", domain: "a.example"))
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: other)[...]), .found(protocol: "tls", domain: nil))
        // RFC 6066: no trailing dot; an empty name is none.
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: sni("a.example."))[...]), .unknown)
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: sni(""))[...]), .unknown)
        // Lengths that point past what encloses them.
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: sni("a.example", listLength: 200))[...]), .unknown)
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: sni("a.example", nameLength: 0xFFFF))[...]), .unknown)
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: sni("a.example"), extensionsLength: 0xFFFF)[...]), .unknown)
        XCTAssertEqual(ContentSniffer.sniff(hello(extensions: [0, 0, 0xFF, 0xFF])[...]), .unknown)
        // Not a handshake record, not TLS 3.x, not a ClientHello.
        XCTAssertEqual(ContentSniffer.sniff([23, 3, 3, 0, 0][...]), .unknown)
        XCTAssertEqual(ContentSniffer.sniff([22, 2, 0][...]), .unknown)
        var serverHello = hello(extensions: [])
        serverHello[5] = 2
        XCTAssertEqual(ContentSniffer.sniff(serverHello[...]), .unknown)
    }

    func testBitTorrent() {
        let handshake = [19] + Array("BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(ContentSniffer.sniff(handshake[...]), .found(protocol: "bittorrent", domain: nil))
        XCTAssertEqual(ContentSniffer.sniff(handshake[..<10]), .needMore)
        XCTAssertEqual(ContentSniffer.sniff(([19] + Array("BitTorrent protocoL".utf8))[...]), .unknown)
    }

    func testNothingMatchesWithinTheWindow() {
        // A request head longer than the window is given up on, not waited for forever.
        let head = "GET / HTTP/1.1\r\n" + String(repeating: "X-Pad: \(String(repeating: "a", count: 1000))\r\n", count: 40)
        XCTAssertEqual(sniff(head), .unknown)
        XCTAssertEqual(ContentSniffer.sniff([][...]), .needMore)
        XCTAssertEqual(ContentSniffer.sniff([0][...]), .unknown)
    }

    func testPolicyOverridesRoutesAndExcludes() throws {
        let tls = SniffResult.found(protocol: "tls", domain: "www.example.com")
        let http = SniffResult.found(protocol: "http1", domain: "api.example.com")
        let both = try SniffingPolicy(SniffingConfig(destOverride: ["http", "tls"]))
        XCTAssertEqual(both.apply(tls), .init(sniffedProtocol: "tls", routingDomain: nil, address: .domain("www.example.com")))
        XCTAssertEqual(both.apply(http).address, .domain("api.example.com"))
        XCTAssertEqual(both.apply(.found(protocol: "http1", domain: "10.0.0.1")).address, .ipv4([10, 0, 0, 1]))
        XCTAssertEqual(both.apply(.found(protocol: "bittorrent", domain: nil)), .init(sniffedProtocol: "bittorrent"))
        XCTAssertEqual(both.apply(.unknown), .init())
        XCTAssertEqual(both.apply(.needMore), .init())
        // Only the listed protocols override; the protocol is still reported for routing.
        let tlsOnly = try SniffingPolicy(SniffingConfig(destOverride: ["tls"]))
        XCTAssertEqual(tlsOnly.apply(http), .init(sniffedProtocol: "http1"))
        // routeOnly: the name is for routing, the connection keeps its address.
        let routeOnly = try SniffingPolicy(SniffingConfig(destOverride: ["tls"], routeOnly: true))
        XCTAssertEqual(routeOnly.apply(tls), .init(sniffedProtocol: "tls", routingDomain: "www.example.com", address: nil))
        // Excluded names keep the destination.
        var excluded = DomainSet()
        excluded.full = ["www.example.com"]
        excluded.regexes = ["^push\\."]
        let policy = try SniffingPolicy(SniffingConfig(destOverride: ["tls"], domainsExcluded: excluded))
        XCTAssertNil(policy.apply(tls).address)
        XCTAssertNil(policy.apply(.found(protocol: "tls", domain: "push.example.com")).address)
        XCTAssertEqual(policy.apply(.found(protocol: "tls", domain: "mail.example.com")).address, .domain("mail.example.com"))
        // A name that is not one (a hostile Host header) leaves the destination alone.
        for name in ["a b.example", "a\u{0}.example", "ex\u{e4}mple.com", String(repeating: "a", count: 256)] {
            XCTAssertNil(both.apply(.found(protocol: "http1", domain: name)).address, name)
        }
        // metadataOnly: vmessd has no metadata sniffer, so nothing is sniffed at all.
        XCTAssertNil(try SniffingPolicy.make(SniffingConfig(destOverride: ["tls"], metadataOnly: true)))
        XCTAssertNotNil(try SniffingPolicy.make(SniffingConfig(destOverride: ["tls"])))
    }
}
