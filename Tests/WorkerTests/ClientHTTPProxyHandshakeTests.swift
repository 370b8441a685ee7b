import Foundation
import NIOCore
import XCTest
@testable import Shared
@testable import Worker

/// The HTTP proxy request parser: CONNECT, absolute-URI rewriting, Basic authentication, the error
/// status lines, drip-feed at every split, and hostile input.
final class ClientHTTPProxyHandshakeTests: XCTestCase {
    func run(_ pieces: [[UInt8]], settings: HTTPInboundSettings = .init()) -> (step: ClientHandshakeStep?, rest: [UInt8]) {
        var machine = HTTPProxyHandshake(settings: settings)
        var buffer = ByteBuffer()
        for (index, piece) in pieces.enumerated() {
            buffer.writeBytes(piece)
            let step = machine.step(&buffer)
            if case .needMore = step { continue }
            // What the client sent after its request head belongs to the relay.
            return (step, buffer.readableBytesView.map { $0 } + pieces[(index + 1)...].joined())
        }
        return (nil, buffer.readableBytesView.map { $0 })
    }

    func runAllSplits(_ text: String, settings: HTTPInboundSettings = .init(), check: (ClientHandshakeStep?, [UInt8]) -> Void) {
        let input = Array(text.utf8)
        let whole = run([input], settings: settings)
        check(whole.step, whole.rest)
        let drip = run(input.map { [$0] }, settings: settings)
        check(drip.step, drip.rest)
        for cut in stride(from: 1, to: input.count, by: 3) {
            let split = run([Array(input[..<cut]), Array(input[cut...])], settings: settings)
            check(split.step, split.rest)
        }
    }

    func request(_ step: ClientHandshakeStep?) -> ClientRequest? {
        if case .connect(let r)? = step { return r }
        return nil
    }

    func refusal(_ step: ClientHandshakeStep?) -> String? {
        if case .refuse(let bytes)? = step { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    func testConnect() {
        runAllSplits("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\u{16}\u{03}") { step, rest in
            let r = request(step)
            XCTAssertEqual(r?.destination, Destination(network: .tcp, address: .domain("example.com"), port: 443))
            XCTAssertEqual(r.map { String(decoding: $0.reply, as: UTF8.self) }, "HTTP/1.1 200 Connection established\r\n\r\n")
            XCTAssertNil(r?.payload)
            XCTAssertEqual(rest, [0x16, 0x03])
        }
        XCTAssertEqual(request(run([Array("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n".utf8)]).step)?.destination,
                       Destination(network: .tcp, address: .ipv6([UInt8](repeating: 0, count: 15) + [1]), port: 8443))
        XCTAssertEqual(request(run([Array("CONNECT 10.1.2.3:22 HTTP/1.0\n\n".utf8)]).step)?.destination,
                       Destination(network: .tcp, address: .ipv4([10, 1, 2, 3]), port: 22))
    }

    func testAbsoluteURIIsRewrittenToOriginForm() {
        let text = "POST http://user@example.com:8080/a/b?x=1#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
            + "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: Basic eA==\r\n"
            + "Content-Length: 4\r\nAccept: */*\r\n\r\nbody"
        runAllSplits(text) { step, rest in
            guard let r = request(step) else { return XCTFail("no request: \(String(describing: step))") }
            XCTAssertEqual(r.destination, Destination(network: .tcp, address: .domain("example.com"), port: 8080))
            XCTAssertEqual(r.reply, [])
            XCTAssertNotNil(r.failureReply)
            let head = r.payload.map { String(decoding: $0.readableBytesView, as: UTF8.self) }
            XCTAssertEqual(head, "POST /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 4\r\nAccept: */*\r\n"
                + "Connection: close\r\n\r\n")
            XCTAssertEqual(rest, Array("body".utf8))
        }
    }

    func testHostIsAddedAndDefaultPortIs80() {
        guard let r = request(run([Array("GET http://example.net HTTP/1.0\r\n\r\n".utf8)]).step) else { return XCTFail() }
        XCTAssertEqual(r.destination, Destination(network: .tcp, address: .domain("example.net"), port: 80))
        XCTAssertEqual(r.payload.map { String(decoding: $0.readableBytesView, as: UTF8.self) },
                       "GET / HTTP/1.0\r\nHost: example.net\r\nConnection: close\r\n\r\n")
    }

    func testBasicAuthentication() {
        var settings = HTTPInboundSettings()
        settings.accounts = [ProxyAccount(user: "alice", pass: "s3cret")]
        let good = "Basic " + Data("alice:s3cret".utf8).base64EncodedString()
        XCTAssertNotNil(request(run([Array("CONNECT a.b:1 HTTP/1.1\r\nProxy-Authorization: \(good)\r\n\r\n".utf8)], settings: settings).step))
        for header in ["", "Proxy-Authorization: Basic " + Data("alice:nope".utf8).base64EncodedString() + "\r\n",
                       "Proxy-Authorization: Bearer xyz\r\n", "Proxy-Authorization: Basic !!!\r\n"] {
            let out = refusal(run([Array("CONNECT a.b:1 HTTP/1.1\r\n\(header)\r\n".utf8)], settings: settings).step)
            XCTAssertTrue(out?.hasPrefix("HTTP/1.1 407 Proxy Authentication Required\r\n") ?? false, "\(header): \(out ?? "accepted")")
            XCTAssertTrue(out?.contains("Proxy-Authenticate: Basic realm=\"proxy\"\r\n") ?? false)
        }
    }

    func testBadRequests() {
        for text in ["GET /relative HTTP/1.1\r\n\r\n", "CONNECT example.com HTTP/1.1\r\n\r\n", "GET https://x.y/ HTTP/1.1\r\n\r\n",
                     "GET http://x.y/ HTTP/2\r\n\r\n", "GET  http://x.y/ HTTP/1.1\r\n\r\n", "G(T http://x.y/ HTTP/1.1\r\n\r\n",
                     "GET http://x.y/ HTTP/1.1\r\n folded: yes\r\n\r\n", "GET http://x.y/ HTTP/1.1\r\nno colon\r\n\r\n",
                     "GET http://bad host/ HTTP/1.1\r\n\r\n", "CONNECT x.y:0 HTTP/1.1\r\n\r\n", "CONNECT x.y:99999 HTTP/1.1\r\n\r\n",
                     "\r\n\r\n"] {
            let out = refusal(run([Array(text.utf8)]).step)
            XCTAssertTrue(out?.hasPrefix("HTTP/1.1 400 Bad Request\r\n") ?? false, "\(text.debugDescription): \(out ?? "accepted")")
        }
    }

    func testOversizedHeadIsRefusedNotBuffered() {
        let huge = "GET http://x.y/ HTTP/1.1\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 2000)
        let out = refusal(run([Array(huge.utf8)]).step)
        XCTAssertTrue(out?.hasPrefix("HTTP/1.1 431 ") ?? false, out ?? "accepted")
    }

    func testHostileInputNeverCrashes() {
        let alphabet = Array("GET CONNECT http:// :/[]\r\n\r\n Host: a.b:80 \u{0} \u{7f}".utf8)
        for _ in 0..<2000 {
            let n = Int.random(in: 0...300)
            let input = (0..<n).map { _ in Bool.random() ? alphabet.randomElement()! : UInt8.random(in: 0...255) }
            _ = run([input])
            _ = run(input.map { [$0] })
        }
    }
}
