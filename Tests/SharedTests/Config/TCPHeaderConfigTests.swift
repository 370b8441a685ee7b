import XCTest
@testable import Shared

/// The tcp transport's HTTP disguise in the config: v4 `tcpSettings.header` with V2Ray's defaults and
/// string lists, v5 `headerSettings` (a typed message), and the errors for heads that could not work.
final class TCPHeaderConfigTests: XCTestCase {
    static let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func parse(_ text: String) throws -> Config { try ConfigParser.parse(text: text, sourceFile: "config.json") }

    func v4(_ stream: String) -> String {
        """
        {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"clients": [{"id": "\(Self.uuid)"}]},
          "streamSettings": \(stream)}]}
        """
    }

    func v5(_ stream: String) -> String {
        """
        {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"users": ["\(Self.uuid)"]},
          "streamSettings": \(stream)}]}
        """
    }

    func headerV4(_ header: String) throws -> TCPHTTPHeaderSettings? {
        try parse(v4(#"{"network": "tcp", "tcpSettings": {"header": \#(header)}}"#)).inbounds[0].stream.tcpHeader
    }

    func headerV5(_ header: String) throws -> TCPHTTPHeaderSettings? {
        try parse(v5(#"{"transport": "tcp", "transportSettings": {"headerSettings": \#(header)}}"#)).inbounds[0].stream.tcpHeader
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "\(error)\n  expected: \(expected)", file: file, line: line)
        }
    }

    // MARK: v4

    func testV4Defaults() throws {
        let h = try XCTUnwrap(try headerV4(#"{"type": "http"}"#))
        XCTAssertEqual(h.request.version, "1.1")
        XCTAssertEqual(h.request.method, "GET")
        XCTAssertEqual(h.request.paths, ["/"])
        XCTAssertEqual(h.request.headers.map(\.name), ["Host", "User-Agent", "Accept-Encoding", "Connection", "Pragma"])
        XCTAssertEqual(h.request.headers[0].values, ["www.baidu.com", "www.bing.com"])
        XCTAssertEqual(h.request.headers[1].values.count, 2)
        XCTAssertEqual(h.response.version, "1.1")
        XCTAssertEqual(h.response.status, "200")
        XCTAssertEqual(h.response.reason, "OK")
        XCTAssertEqual(h.response.headers.map(\.name), ["Content-Type", "Transfer-Encoding", "Connection", "Pragma", "Cache-Control"])
        XCTAssertEqual(h.response.headers[0].values, ["application/octet-stream", "video/mpeg"])
        XCTAssertEqual(h.response.headers[4].values, ["private", "no-cache"])
        // Empty values keep the defaults, as in V2Ray's loader; so does an empty header map.
        let empty = try XCTUnwrap(try headerV4(#"{"type": "HTTP", "request": {"version": "", "method": "", "path": [], "headers": {}}, "response": {"status": "", "headers": {}}}"#))
        XCTAssertEqual(empty, h)
    }

    func testV4ConfiguredValues() throws {
        let h = try XCTUnwrap(try headerV4("""
            {"type": "http",
             "request": {"version": "1.0", "method": "POST", "path": "/a,/b", "headers": {"X-Z": "1", "Host": ["a.test", "b.test"], "accept": "x, y"}},
             "response": {"reason": "Moved", "headers": {"Location": ["/"]}}}
            """))
        XCTAssertEqual(h.request.version, "1.0")
        XCTAssertEqual(h.request.method, "POST")
        XCTAssertEqual(h.request.paths, ["/a", "/b"])  // StringList: one string, split at commas
        // Sorted by name as V2Ray does (byte order: upper case first); "x, y" is split too.
        XCTAssertEqual(h.request.headers, [.init(name: "Host", values: ["a.test", "b.test"]), .init(name: "X-Z", values: ["1"]),
                                           .init(name: "accept", values: ["x", " y"])])
        XCTAssertEqual(h.response.status, "200")  // only the reason given: the status keeps its default
        XCTAssertEqual(h.response.reason, "Moved")
        XCTAssertEqual(h.response.headers, [.init(name: "Location", values: ["/"])])
    }

    func testV4NoneIsPlainTCP() throws {
        XCTAssertNil(try headerV4(#"{"type": "none"}"#))
        XCTAssertNil(try headerV4(#"{}"#))
        XCTAssertNil(try parse(v4(#"{"network": "tcp"}"#)).inbounds[0].stream.tcpHeader)
    }

    func testV4Errors() {
        let at = "config.json: inbounds[0].streamSettings.tcpSettings.header"
        func stream(_ header: String) -> String { v4(#"{"network": "tcp", "tcpSettings": {"header": \#(header)}}"#) }
        assertError(stream(#"{"type": "srtp"}"#), "\(at).type: expected \"none\" or \"http\", got \"srtp\"")
        assertError(stream(#"{"type": "none", "request": {}}"#), "\(at).request: \"request\" has no effect unless type is \"http\"")
        assertError(stream(#"{"type": "http", "request": {"headers": {"Host": null}}}"#), "\(at).request.headers.Host: HTTP header \"Host\" has no value")
        assertError(stream(#"{"type": "http", "request": {"headers": {"Host": "a", "host": "b"}}}"#), "HTTP header \"host\" is given twice")
        assertError(stream(#"{"type": "http", "request": {"headers": {"a b": "x"}}}"#), "invalid HTTP header name \"a b\"")
        assertError(stream(#"{"type": "http", "request": {"headers": {"X": ["a\r\nb"]}}}"#), "has a line break or NUL in its value")
        assertError(stream(#"{"type": "http", "request": {"path": ["/a b"]}}"#), "\(at).request.path[0]: invalid request path \"/a b\"")
        assertError(stream(#"{"type": "http", "request": {"path": ["a"]}}"#), "invalid request path \"a\"")
        assertError(stream(#"{"type": "http", "request": {"method": "GE T"}}"#), "invalid HTTP method \"GE T\"")
        assertError(stream(#"{"type": "http", "request": {"version": "1 .1"}}"#), "invalid HTTP version")
        assertError(stream(#"{"type": "http", "response": {"status": "2000"}}"#), "\(at).response.status: invalid HTTP status \"2000\"")
        assertError(stream(#"{"type": "http", "response": {"status": 200}}"#), "expected a string, got 200")
        assertError(stream(#"{"type": "http", "response": {"reason": "a\nb"}}"#), "line break or NUL")
        assertError(stream(#"{"type": "http", "request": {"uri": ["/"]}}"#), "unknown key \"uri\"")
        assertError(v4(#"{"network": "ws", "tcpSettings": {"header": {"type": "http"}}}"#),
                    "\"tcpSettings\" has no effect unless network is \"tcp\"")
    }

    /// Xray's "raw" network and its `rawSettings` name for tcpSettings.
    func testXrayRawSettings() throws {
        let h = try parse(v4(#"{"network": "raw", "rawSettings": {"header": {"type": "http", "request": {"path": ["/r"]}}}}"#))
            .inbounds[0].stream.tcpHeader
        XCTAssertEqual(h?.request.paths, ["/r"])
        assertError(v4(#"{"network": "raw", "rawSettings": {}, "tcpSettings": {}}"#),
                    "streamSettings.rawSettings: \"rawSettings\" and \"tcpSettings\" are the same settings; give one of them")
        assertError(v4(#"{"network": "ws", "rawSettings": {}}"#), "\"rawSettings\" has no effect unless network is \"tcp\"")
    }

    // MARK: v5

    static let httpType = "v2ray.core.transport.internet.headers.http.Config"

    func testV5Message() throws {
        let h = try XCTUnwrap(try headerV5("""
            {"@type": "types.v2fly.org/\(Self.httpType)",
             "request": {"version": {"value": "1.1"}, "method": {"value": "PUT"}, "uri": ["/x", "/y"],
                         "header": [{"name": "Host", "value": ["a.test", "b.test"]}, {"name": "X-Empty"}]},
             "response": {"version": {"value": "1.0"}, "status": {"code": "302", "reason": "Found"},
                          "header": [{"name": "Location", "value": ["/"]}]}}
            """))
        XCTAssertEqual(h.request.method, "PUT")
        XCTAssertEqual(h.request.paths, ["/x", "/y"])
        // In the order given (a list, not a map), with no defaults added.
        XCTAssertEqual(h.request.headers, [.init(name: "Host", values: ["a.test", "b.test"]), .init(name: "X-Empty", values: [])])
        XCTAssertEqual(h.response.version, "1.0")
        XCTAssertEqual(h.response.status, "302")
        XCTAssertEqual(h.response.reason, "Found")

        let defaults = try XCTUnwrap(try headerV5(#"{"@type": "\#(Self.httpType)", "request": {"uri": ["/"]}, "response": {}}"#))
        var expected = TCPHTTPHeaderSettings()
        expected.request.paths = ["/"]
        XCTAssertEqual(defaults, expected)
        XCTAssertNil(try headerV5(#"{"@type": "v2ray.core.transport.internet.headers.noop.ConnectionConfig"}"#))
        // proto field names work too.
        XCTAssertNotNil(try parse(v5("""
            {"transport": "tcp", "transportSettings": {"header_settings": {"@type": "\(Self.httpType)", "request": {"uri": ["/"]}, "response": {}}}}
            """)).inbounds[0].stream.tcpHeader)
    }

    func testV5Errors() {
        let at = "config.json: inbounds[0].streamSettings.transportSettings.headerSettings"
        func stream(_ header: String) -> String { v5(#"{"transport": "tcp", "transportSettings": {"headerSettings": \#(header)}}"#) }
        assertError(stream(#"{"request": {"uri": ["/"]}, "response": {}}"#), "\(at): missing required key \"@type\"")
        assertError(stream(#"{"@type": "v2ray.core.transport.internet.headers.srtp.Config"}"#), "\(at)[\"@type\"]: expected \"v2ray.core.transport.internet.headers.http.Config\" or")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {"uri": ["/"]}}"#), "\(at): missing required key \"response\"")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "response": {}}"#), "\(at): missing required key \"request\"")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {}, "response": {}}"#), "\(at).request: missing required key \"uri\"")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {"uri": []}, "response": {}}"#), "\(at).request.uri: at least one request path is needed")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {"uri": ["/"]}, "response": {"status": {"reason": "OK"}}}"#),
                    "\(at).response.status: missing required key \"code\"")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {"uri": ["/"], "method": {"value": ""}}, "response": {}}"#),
                    "invalid HTTP method \"\"")
        assertError(stream(#"{"@type": "\#(Self.httpType)", "request": {"uri": ["/"], "header": [{"name": "X", "value": "a"}]}, "response": {}}"#),
                    "expected an array")
    }

    // MARK: outbounds

    func testOutboundCarriesTheHeader() throws {
        let config = try parse("""
            {"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "127.0.0.1", "port": 1, "users": [{"id": "\(Self.uuid)"}]}]},
              "streamSettings": {"network": "tcp", "tcpSettings": {"header": {"type": "http", "request": {"path": ["/p"]}}}}}]}
            """)
        guard case .vmess(let vmess) = config.outbounds[0].settings else { return XCTFail("not a vmess outbound") }
        XCTAssertEqual(vmess.stream.tcpHeader?.request.paths, ["/p"])
    }
}
