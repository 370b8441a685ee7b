// Share links must decode, in any v2rayN-compatible client, to exactly the fields we meant.

import Foundation
import Shared
import XCTest
@testable import Supervisor

final class ShareLinkTests: XCTestCase {
    /// Decodes a link the way a client does: strip the scheme, base64-decode, parse JSON.
    private func fields(of url: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertTrue(url.hasPrefix("vmess://"), file: file, line: line)
        let data = try XCTUnwrap(Data(base64Encoded: String(url.dropFirst("vmess://".count))), file: file, line: line)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file: file, line: line)
    }

    func testTCPLinkHasEveryFieldAsString() throws {
        let link = ShareLink(remark: "main", address: "203.0.113.7", port: 10086,
                             id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        let json = try fields(of: link.url)
        let expected: [String: String] = [
            "v": "2", "ps": "main", "add": "203.0.113.7", "port": "10086",
            "id": "b831381d-6324-4d53-ad4f-8cda48b30811", "aid": "0", "scy": "auto", "net": "tcp",
            "type": "none", "host": "", "path": "", "tls": "", "sni": "",
        ]
        XCTAssertEqual(Set(json.keys), Set(expected.keys))
        for (key, value) in expected {
            XCTAssertEqual(json[key] as? String, value, "field \(key)")
        }
    }

    func testWebSocketTLSLinkKeepsPathUnescaped() throws {
        let link = ShareLink(remark: "ws", address: "example.com", port: 443, id: "b831381d-6324-4d53-ad4f-8cda48b30811",
                             network: "ws", host: "cdn.example.com", path: "/ray/x", tls: true, sni: "example.com")
        let json = try fields(of: link.url)
        XCTAssertEqual(json["net"] as? String, "ws")
        XCTAssertEqual(json["path"] as? String, "/ray/x")
        XCTAssertEqual(json["host"] as? String, "cdn.example.com")
        XCTAssertEqual(json["tls"] as? String, "tls")
        XCTAssertEqual(json["sni"] as? String, "example.com")
        // Some clients do not unescape "\/": the JSON must carry the path as typed.
        let raw = String(decoding: Data(base64Encoded: String(link.url.dropFirst(8)))!, as: UTF8.self)
        XCTAssertTrue(raw.contains("\"/ray/x\""), raw)
    }

    func testLinkRoundTripsAndIsDeterministic() throws {
        let link = ShareLink(remark: "a", address: "::1", port: 1, id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        XCTAssertEqual(link.url, link.url)
        XCTAssertEqual(ShareLink(url: link.url), link)
        XCTAssertNil(ShareLink(url: "vless://abc"))
    }

    func testDialAddress() {
        XCTAssertEqual(ShareLink.dialAddress(listen: "0.0.0.0", override: nil), "127.0.0.1")
        XCTAssertEqual(ShareLink.dialAddress(listen: "::", override: nil), "127.0.0.1")
        XCTAssertEqual(ShareLink.dialAddress(listen: "192.0.2.1", override: nil), "192.0.2.1")
        XCTAssertEqual(ShareLink.dialAddress(listen: "0.0.0.0", override: "vpn.example.com"), "vpn.example.com")
        XCTAssertEqual(ShareLink.dialAddress(listen: "192.0.2.1", override: ""), "192.0.2.1")
    }

    func testRemarkPrefersTagThenEmail() {
        XCTAssertEqual(ShareLink.remark(tag: "in", email: "a@b"), "in")
        XCTAssertEqual(ShareLink.remark(tag: nil, email: "a@b"), "a@b")
        XCTAssertEqual(ShareLink.remark(tag: "", email: nil), "vmessd")
    }

    /// The config-to-link mapping: one link per user per VMess inbound, transport fields filled in.
    func testShareLinksForConfig() throws {
        var ws = StreamSettings()
        ws.network = .ws
        ws.security = .tls
        var wsSettings = WebSocketSettings()
        wsSettings.path = "/ws"
        wsSettings.headers = ["Host": "h.example"]
        ws.ws = wsSettings
        var tls = TLSSettings()
        tls.serverName = "sni.example"
        ws.tls = tls
        let users = [VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811", email: "one@x"),
                     VMessUser(id: "27848739-7e62-4138-9fd3-098a63964b6b")]
        let config = Config(sourceFile: "t.json", format: .v4, inbounds: [
            InboundConfig(listen: "0.0.0.0", port: 10086, settings: .vmess(.init(users: users)), jsonPath: "inbounds[0]"),
            InboundConfig(tag: "edge", listen: "198.51.100.2", port: 443, settings: .vmess(.init(users: [users[1]])),
                          stream: ws, jsonPath: "inbounds[1]"),
        ], outbounds: [])

        let links = try shareLinks(for: config, address: nil).map { try fields(of: $0) }
        XCTAssertEqual(links.count, 3)
        XCTAssertEqual(links[0]["ps"] as? String, "one@x")
        XCTAssertEqual(links[0]["add"] as? String, "127.0.0.1")
        XCTAssertEqual(links[1]["ps"] as? String, "vmessd")
        XCTAssertEqual(links[1]["id"] as? String, "27848739-7e62-4138-9fd3-098a63964b6b")
        XCTAssertEqual(links[2]["ps"] as? String, "edge")
        XCTAssertEqual(links[2]["add"] as? String, "198.51.100.2")
        XCTAssertEqual(links[2]["port"] as? String, "443")
        XCTAssertEqual(links[2]["net"] as? String, "ws")
        XCTAssertEqual(links[2]["path"] as? String, "/ws")
        XCTAssertEqual(links[2]["host"] as? String, "h.example")
        XCTAssertEqual(links[2]["tls"] as? String, "tls")
        XCTAssertEqual(links[2]["sni"] as? String, "sni.example")

        let overridden = try shareLinks(for: config, address: "vpn.example").map { try fields(of: $0) }
        XCTAssertEqual(overridden.map { $0["add"] as? String }, ["vpn.example", "vpn.example", "vpn.example"])
    }

    /// tcp with the HTTP disguise: type "http", the accepted paths and the Host values, comma-separated.
    func testShareLinkForTCPHTTPHeader() throws {
        var stream = StreamSettings()
        var header = TCPHTTPHeaderSettings()
        header.request.paths = ["/a", "/b"]
        header.request.headers = [.init(name: "User-Agent", values: ["x"]), .init(name: "host", values: ["h1.example", "h2.example"])]
        stream.tcpHeader = header
        let config = Config(sourceFile: "t.json", format: .v4, inbounds: [
            InboundConfig(listen: "192.0.2.1", port: 80, settings: .vmess(.init(users: [VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811")])),
                          stream: stream, jsonPath: "inbounds[0]"),
        ], outbounds: [])
        let link = try fields(of: try XCTUnwrap(shareLinks(for: config, address: nil).first))
        XCTAssertEqual(link["net"] as? String, "tcp")
        XCTAssertEqual(link["type"] as? String, "http")
        XCTAssertEqual(link["path"] as? String, "/a,/b")
        XCTAssertEqual(link["host"] as? String, "h1.example,h2.example")
    }
}
