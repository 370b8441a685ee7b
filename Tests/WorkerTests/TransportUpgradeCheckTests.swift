import NIOHTTP1
import XCTest
@testable import Shared
@testable import Worker

/// The pure parts of the ws/httpupgrade server: early-data text coding and the decision on a request
/// head (vmess-protocol.md §12).
final class TransportUpgradeCheckTests: XCTestCase {
    // MARK: early data text

    func testTolerantDecodingAcceptsBothAlphabetsAndStrayPadding() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF, 0x00, 0x01]
        XCTAssertEqual(EarlyData.encodeRaw(bytes), "-_-_AAE")
        XCTAssertEqual(EarlyData.decodeTolerant("-_-_AAE"), bytes)
        XCTAssertEqual(EarlyData.decodeTolerant("+/+/AAE="), bytes)
        XCTAssertEqual(EarlyData.decodeTolerant("-_-_AAE=="), bytes)
        XCTAssertNil(EarlyData.decodeTolerant("abcde"))  // 5 characters cannot be base64
        XCTAssertNil(EarlyData.decodeTolerant("ab cd"))
    }

    func testPaddedDecodingIsStrict() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF, 0x00, 0x01]
        XCTAssertEqual(EarlyData.encodePadded(bytes), "-_-_AAE=")
        XCTAssertEqual(EarlyData.decodePadded("-_-_AAE="), bytes)
        XCTAssertNil(EarlyData.decodePadded("-_-_AAE"))
        XCTAssertNil(EarlyData.decodePadded("+/+/AAE="))
    }

    func testRoundTripEveryLength() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            XCTAssertEqual(EarlyData.decodeTolerant(EarlyData.encodeRaw(bytes)), bytes, "n=\(n)")
            XCTAssertEqual(EarlyData.decodePadded(EarlyData.encodePadded(bytes)), bytes, "n=\(n)")
        }
    }

    // MARK: WebSocket decisions

    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func head(_ uri: String, _ headers: [(String, String)], method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    func wsHeaders(_ extra: [(String, String)] = []) -> [(String, String)] {
        [("Host", "example.com"), ("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket"),
         ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", Self.key)] + extra
    }

    func ws(path: String = "/ws", host: String? = nil, maxEarlyData: Int = 0, header: String? = nil) -> UpgradeRequestCheck {
        var s = WebSocketSettings()
        s.path = path
        s.host = host
        s.maxEarlyData = maxEarlyData
        s.earlyDataHeaderName = header
        return UpgradeRequestCheck(.webSocket(s))
    }

    func testWebSocketAcceptValueIsRFC6455s() {
        XCTAssertEqual(UpgradeRequestCheck.acceptValue(key: Self.key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testWebSocketPathMustMatchExactlyQueryIgnored() {
        let check = ws()
        guard case .upgrade(let early, let headers) = check.decide(head("/ws?x=1", wsHeaders())) else {
            return XCTFail("not upgraded")
        }
        XCTAssertEqual(early, [])
        XCTAssertEqual(headers.first { $0.name == "Sec-WebSocket-Accept" }?.value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(check.decide(head("/ws/", wsHeaders())), .refuse(.notFound))
        XCTAssertEqual(check.decide(head("/w", wsHeaders())), .refuse(.notFound))
        XCTAssertEqual(check.decide(head("/other", wsHeaders())), .refuse(.notFound))
        // The client-side `?ed=` syntax in a server config does not change the path.
        XCTAssertEqual(ws(path: "/ws?ed=2048").path, "/ws")
    }

    func testPathsAreComparedPercentDecodedAndSentEncoded() {
        let check = ws(path: "/下载 x")
        let target = ClientUpgradeRequest.encodedTarget("/下载 x")
        XCTAssertEqual(target, "/%E4%B8%8B%E8%BD%BD%20x")
        guard case .upgrade = check.decide(head(target, wsHeaders())) else { return XCTFail("not upgraded") }
        XCTAssertEqual(ClientUpgradeRequest.encodedTarget("/ws?a=b c"), "/ws?a=b%20c")
        XCTAssertEqual(ClientUpgradeRequest.encodedTarget("/ws"), "/ws")
    }

    func testWebSocketRefusesNonUpgradeRequestsOnTheRightPath() {
        let check = ws()
        XCTAssertEqual(check.decide(head("/ws", [("Host", "x")])), .refuse(.badRequest))
        XCTAssertEqual(check.decide(head("/ws", wsHeaders(), method: .POST)), .refuse(.methodNotAllowed))
        var noKey = wsHeaders()
        noKey.removeAll { $0.0 == "Sec-WebSocket-Key" }
        XCTAssertEqual(check.decide(head("/ws", noKey)), .refuse(.badRequest))
        var v8 = wsHeaders()
        v8[3] = ("Sec-WebSocket-Version", "8")
        XCTAssertEqual(check.decide(head("/ws", v8)), .refuse(.badRequest))
    }

    func testWebSocketHostIsCheckedWhenConfigured() {
        let check = ws(host: "Example.com")
        XCTAssertNotEqual(check.decide(head("/ws", wsHeaders())), .refuse(.notFound))
        var withPort = wsHeaders()
        withPort[0] = ("Host", "example.com:443")
        XCTAssertNotEqual(check.decide(head("/ws", withPort)), .refuse(.notFound))
        var other = wsHeaders()
        other[0] = ("Host", "evil.com")
        XCTAssertEqual(check.decide(head("/ws", other)), .refuse(.notFound))
    }

    func testWebSocketEarlyDataInSecWebSocketProtocolIsTakenAndEchoed() {
        let data: [UInt8] = Array(0..<200)
        let text = EarlyData.encodeRaw(data)
        let decision = ws().decide(head("/ws", wsHeaders([("Sec-WebSocket-Protocol", text)])))
        guard case .upgrade(let early, let headers) = decision else { return XCTFail("\(decision)") }
        XCTAssertEqual(early, data)
        XCTAssertEqual(headers.first { $0.name == "Sec-WebSocket-Protocol" }?.value, text)
    }

    func testWebSocketEarlyDataInACustomHeaderIsNotEchoed() {
        let data: [UInt8] = [1, 2, 3, 4]
        let decision = ws(maxEarlyData: 2048, header: "X-Early").decide(
            head("/ws", wsHeaders([("X-Early", EarlyData.encodeRaw(data))])))
        guard case .upgrade(let early, let headers) = decision else { return XCTFail("\(decision)") }
        XCTAssertEqual(early, data)
        XCTAssertNil(headers.first { $0.name == "Sec-WebSocket-Protocol" })
    }

    func testWebSocketEarlyDataInThePath() {
        let data: [UInt8] = Array(repeating: 0xAB, count: 300)
        let check = ws(maxEarlyData: 2048)
        let decision = check.decide(head("/ws" + EarlyData.encodeRaw(data), wsHeaders()))
        guard case .upgrade(let early, _) = decision else { return XCTFail("\(decision)") }
        XCTAssertEqual(early, data)
        guard case .upgrade(let none, _) = check.decide(head("/ws", wsHeaders())) else { return XCTFail() }
        XCTAssertEqual(none, [])
        XCTAssertEqual(check.decide(head("/other" + EarlyData.encodeRaw(data), wsHeaders())), .refuse(.notFound))
        // More than maxEarlyData is not early data.
        XCTAssertEqual(ws(maxEarlyData: 100).decide(head("/ws" + EarlyData.encodeRaw(data), wsHeaders())), .refuse(.notFound))
    }

    // MARK: httpupgrade decisions

    func hu(path: String = "/download", host: String? = "proxy.example.net", maxEarlyData: Int = 0,
            header: String? = nil) -> UpgradeRequestCheck {
        var s = HTTPUpgradeSettings()
        s.path = path
        s.host = host
        s.maxEarlyData = maxEarlyData
        s.earlyDataHeaderName = header
        return UpgradeRequestCheck(.httpUpgrade(s))
    }

    let huHeaders = [("Host", "proxy.example.net"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]

    func testHTTPUpgradeAnswersWithTheExactHeaders() {
        XCTAssertEqual(hu().decide(head("/download", huHeaders)),
                       .upgrade(earlyData: [], responseHeaders: [.init(name: "Connection", value: "Upgrade"),
                                                                 .init(name: "Upgrade", value: "websocket")]))
    }

    func testHTTPUpgradeChecks() {
        let check = hu()
        XCTAssertEqual(check.decide(head("/upload", huHeaders)), .refuse(.notFound))
        XCTAssertEqual(check.decide(head("/download", [("Host", "other"), ("Connection", "upgrade"), ("Upgrade", "WebSocket")])),
                       .refuse(.notFound))
        XCTAssertEqual(check.decide(head("/download", [("Host", "proxy.example.net"), ("Connection", "keep-alive, Upgrade"),
                                                      ("Upgrade", "websocket")])), .refuse(.badRequest))
        XCTAssertEqual(check.decide(head("/download", [("Host", "proxy.example.net")])), .refuse(.badRequest))
        // Lower-cased comparison (v2fly sends "upgrade").
        guard case .upgrade = check.decide(head("/download", [("Host", "PROXY.example.net"), ("Connection", "upgrade"),
                                                             ("Upgrade", "WebSocket")])) else { return XCTFail() }
        // No host configured: any Host.
        guard case .upgrade = hu(host: nil).decide(head("/download", [("Host", "x"), ("Connection", "upgrade"),
                                                                     ("Upgrade", "websocket")])) else { return XCTFail() }
    }

    func testHTTPUpgradeV2flyHeaderEarlyDataIsPaddedAndCappedAtMaxEarlyData() {
        let data: [UInt8] = Array(0..<50)
        let check = hu(maxEarlyData: 20, header: "Sec-WebSocket-Protocol")
        let decision = check.decide(head("/download", huHeaders + [("Sec-WebSocket-Protocol", EarlyData.encodePadded(data))]))
        guard case .upgrade(let early, _) = decision else { return XCTFail("\(decision)") }
        XCTAssertEqual(early, Array(data.prefix(20)))
        XCTAssertEqual(check.decide(head("/download", huHeaders + [("Sec-WebSocket-Protocol", "not base64!")])),
                       .refuse(.badRequest))
        // Without maxEarlyData the header is not early data.
        guard case .upgrade(let none, _) = hu().decide(head("/download", huHeaders + [("Sec-WebSocket-Protocol", "AAAA")])) else {
            return XCTFail()
        }
        XCTAssertEqual(none, [])
    }

    // MARK: SNI

    func testSNIMatching() {
        let table = SNITable(names: [["default.test"], ["a.example.com", "*.wild.test"], ["b.example.com"]])
        XCTAssertEqual(table.match("default.test"), 0)
        XCTAssertEqual(table.match("A.Example.COM"), 1)
        XCTAssertEqual(table.match("x.wild.test"), 1)
        XCTAssertEqual(table.match("x.wild.test."), 1)
        XCTAssertNil(table.match("x.y.wild.test"))
        XCTAssertNil(table.match("wild.test"))
        XCTAssertEqual(table.match("b.example.com"), 2)
        XCTAssertNil(table.match("c.example.com"))
    }
}
