import XCTest
@testable import Shared
@testable import Worker

/// The pure core of the tcp HTTP disguise: the heads both sides write (V2Ray's defaults for v4 and
/// v5, one value at random per header), the server's verdict on a request head, the Date header.
final class TCPHTTPHeaderTests: XCTestCase {
    // Random choices come from SplitMix64 with a fixed seed, so a head can be compared whole.
    static let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func settingsV4(_ header: String) throws -> TCPHTTPHeaderSettings {
        let text = """
            {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"clients": [{"id": "\(Self.uuid)"}]},
              "streamSettings": {"network": "tcp", "tcpSettings": {"header": \(header)}}}]}
            """
        return try XCTUnwrap(ConfigParser.parse(text: text, sourceFile: "config.json").inbounds[0].stream.tcpHeader)
    }

    func settingsV5(_ header: String) throws -> TCPHTTPHeaderSettings {
        let text = """
            {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"users": ["\(Self.uuid)"]},
              "streamSettings": {"transport": "tcp", "transportSettings": {"headerSettings": \(header)}}}]}
            """
        return try XCTUnwrap(ConfigParser.parse(text: text, sourceFile: "config.json").inbounds[0].stream.tcpHeader)
    }

    /// Lines of a head, for checks that do not depend on the random picks.
    func lines(_ head: String) -> [String] {
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), head)
        // utf8: "\r\n" is one Character, so dropLast on the String would take the wrong amount.
        return String(decoding: head.utf8.dropLast(4), as: UTF8.self).components(separatedBy: "\r\n")
    }

    // MARK: defaults

    func testV4DefaultRequestHeadIsV2Rays() throws {
        let header = TCPHTTPHeader(settings: try settingsV4(#"{"type": "http"}"#))
        var random = SplitMix64(seed: 1)
        for _ in 0..<20 {
            let l = lines(header.requestHead(using: &random))
            XCTAssertEqual(l[0], "GET / HTTP/1.1")
            XCTAssertEqual(l.count, 6)
            XCTAssertTrue(["Host: www.baidu.com", "Host: www.bing.com"].contains(l[1]), l[1])
            XCTAssertTrue(l[2].hasPrefix("User-Agent: Mozilla/5.0 ("), l[2])
            XCTAssertEqual(Array(l[3...]), ["Accept-Encoding: gzip, deflate", "Connection: keep-alive", "Pragma: no-cache"])
        }
    }

    func testV4DefaultResponseHeadIsV2RaysWithADate() throws {
        let header = TCPHTTPHeader(settings: try settingsV4(#"{"type": "http"}"#))
        var random = SplitMix64(seed: 2)
        let l = lines(header.responseHead(now: 784_111_777, using: &random))
        XCTAssertEqual(l[0], "HTTP/1.1 200 OK")
        XCTAssertTrue(["Content-Type: application/octet-stream", "Content-Type: video/mpeg"].contains(l[1]), l[1])
        XCTAssertEqual(Array(l[2...4]), ["Transfer-Encoding: chunked", "Connection: keep-alive", "Pragma: no-cache"])
        XCTAssertTrue(["Cache-Control: private", "Cache-Control: no-cache"].contains(l[5]), l[5])
        XCTAssertEqual(l[6], "Date: Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(l.count, 7)
    }

    /// v5: the message's defaults only (1.1, GET, 200 OK), no headers but the Date.
    func testV5DefaultsHaveNoHeaders() throws {
        let header = TCPHTTPHeader(settings: try settingsV5("""
            {"@type": "v2ray.core.transport.internet.headers.http.Config", "request": {"uri": ["/x"]}, "response": {}}
            """))
        var random = SplitMix64(seed: 3)
        XCTAssertEqual(header.requestHead(using: &random), "GET /x HTTP/1.1\r\n\r\n")
        XCTAssertEqual(header.responseHead(now: 0, using: &random), "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n")
    }

    /// Configured values replace the defaults; headers (v4 map) are sent sorted by name; a configured
    /// Date header means no second one.
    func testConfiguredHeadsV4() throws {
        let header = TCPHTTPHeader(settings: try settingsV4("""
            {"type": "http",
             "request": {"version": "1.0", "method": "POST", "path": ["/upload"], "headers": {"X-B": ["b"], "Host": ["cdn.test"], "X-Empty": []}},
             "response": {"version": "1.0", "status": "404", "reason": "Not Here", "headers": {"Date": "Mon, 01 Jan 2024 00:00:00 GMT", "Server": "nginx"}}}
            """))
        var random = SplitMix64(seed: 4)
        XCTAssertEqual(header.requestHead(using: &random), "POST /upload HTTP/1.0\r\nHost: cdn.test\r\nX-B: b\r\nX-Empty: \r\n\r\n")
        // "Mon, 01 Jan 2024 …" is a single string: V2Ray's StringList splits it at the comma.
        let response = header.responseHead(now: 0, using: &random)
        XCTAssertTrue(response.hasPrefix("HTTP/1.0 404 Not Here\r\nDate: "), response)
        XCTAssertTrue(response.hasSuffix("\r\nServer: nginx\r\n\r\n"), response)
        XCTAssertFalse(response.contains("1970"), response)
    }

    /// One value is picked at random per head, each of them over many heads, never anything else.
    func testRandomChoiceAmongValues() throws {
        let header = TCPHTTPHeader(settings: try settingsV4("""
            {"type": "http", "request": {"path": ["/a", "/b", "/c"], "headers": {"Host": ["h1", "h2", "h3", "h4"]}},
             "response": {"headers": {"X": ["1", "2"]}}}
            """))
        var random = SystemRandomNumberGenerator()
        var paths: [String: Int] = [:], hosts: [String: Int] = [:], xs: [String: Int] = [:]
        for _ in 0..<400 {
            let request = lines(header.requestHead(using: &random))
            paths[request[0], default: 0] += 1
            hosts[request[1], default: 0] += 1
            xs[lines(header.responseHead(now: 0, using: &random))[1], default: 0] += 1
        }
        XCTAssertEqual(Set(paths.keys), ["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /c HTTP/1.1"])
        XCTAssertEqual(Set(hosts.keys), ["Host: h1", "Host: h2", "Host: h3", "Host: h4"])
        XCTAssertEqual(Set(xs.keys), ["X: 1", "X: 2"])
        // 400 draws: each of 4 values expected 100 times; below 50 is astronomically unlikely.
        XCTAssertTrue(hosts.values.allSatisfy { $0 > 50 }, "\(hosts)")
    }

    // MARK: the server's check

    func head(_ startLine: String) -> HTTPHeadLines { HTTPHeadLines(startLine: startLine, fields: []) }

    func testPathCheck() throws {
        let header = TCPHTTPHeader(settings: try settingsV4(#"{"type": "http", "request": {"path": ["/a", "/下载"]}}"#))
        for line in ["GET /a HTTP/1.1", "POST /a?x=1 HTTP/1.0", "GET /%E4%B8%8B%E8%BD%BD HTTP/1.1", "GET http://example.com/a?q HTTP/1.1",
                     "PUT /a HTTP/2.0"] {
            XCTAssertEqual(header.check(head(line)), .accept, line)
        }
        for line in ["GET / HTTP/1.1", "GET /a/ HTTP/1.1", "GET /ab HTTP/1.1", "GET /A HTTP/1.1", "GET * HTTP/1.1",
                     "GET http://example.com HTTP/1.1"] {
            XCTAssertEqual(header.check(head(line)), .refuse(.notFound), line)
        }
        for line in ["GET /a", "GET /a HTTP/1.1 x", "GET /a HTTP/11", "GET /a http/1.1", "G@T /a HTTP/1.1", "GET  HTTP/1.1",
                     "GET a HTTP/1.1", "GET /%zz HTTP/1.1", "GET /a\tb HTTP/1.1", " GET /a HTTP/1.1", "\u{16}\u{03}\u{01}"] {
            XCTAssertEqual(header.check(head(line)), .refuse(.badRequest), line.debugDescription)
        }
    }

    func testStartLineIsJudgedAsSoonAsItIsComplete() {
        XCTAssertNil(TCPHTTPHeader.startLineIsBad(Array("GET /a HTTP/1.".utf8)))
        XCTAssertEqual(TCPHTTPHeader.startLineIsBad(Array("GET /a HTTP/1.1\r\nHost".utf8)), false)
        XCTAssertEqual(TCPHTTPHeader.startLineIsBad(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)), true)
        XCTAssertEqual(TCPHTTPHeader.startLineIsBad(Array("GET /a HTTP/1.1\n".utf8)), true)
        XCTAssertEqual(TCPHTTPHeader.startLineIsBad([0x16, 0x03, 0x01, 0x00, 10]), true)
    }

    // MARK: refusals and dates

    func testRefusalHeadsAreV2Rays() {
        XCTAssertEqual(TCPHTTPHeader.refusalHead(.notFound, now: 0),
                       "HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\n"
                           + "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n")
        XCTAssertTrue(TCPHTTPHeader.refusalHead(.badRequest, now: 0).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }

    func testHTTPDate() {
        XCTAssertEqual(TCPHTTPHeader.httpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(TCPHTTPHeader.httpDate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")  // RFC 9110 §5.6.7
        XCTAssertEqual(TCPHTTPHeader.httpDate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
        XCTAssertEqual(TCPHTTPHeader.httpDate(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT")
        XCTAssertEqual(TCPHTTPHeader.httpDate(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT")
        XCTAssertEqual(TCPHTTPHeader.httpDate(-1), "Wed, 31 Dec 1969 23:59:59 GMT")
    }
}
