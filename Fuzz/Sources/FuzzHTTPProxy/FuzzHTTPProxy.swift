@testable import FuzzSupport
import NIOCore
@testable import Shared
@testable import Worker

// The http inbound's handshake: CONNECT and absolute-form forwarding (request-line, authority and
// IPv6 literal parsing, hop-by-hop header removal, Basic auth). Input: configuration, read-cut
// selector, bytes. Configuration bit 0: an account (alice/s3cret) is required.
// The handshake runs over one read and over the fuzzed reads, and both runs must agree.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    var settings = HTTPInboundSettings()
    if input.bool() { settings.accounts = [ProxyAccount(user: "alice", pass: "s3cret")] }
    let selector = input.byte()
    let bytes = input.rest()
    let whole = HandshakeReplay.run(HTTPProxyHandshake(settings: settings), bytes.isEmpty ? [] : [bytes[...]])
    let cut = HandshakeReplay.run(HTTPProxyHandshake(settings: settings), Pieces.split(bytes, selector: selector))
    precondition(whole == cut, "outcome depends on the read boundaries: \(whole) vs \(cut)")
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let texts: [(UInt8, String)] = [
            (0, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\u{16}\u{03}"),
            (0, "CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"),
            (0, "CONNECT 10.1.2.3:22 HTTP/1.0\n\n"),
            (0, "POST http://user@example.com:8080/a/b?x=1#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
                + "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: Basic eA==\r\n"
                + "Content-Length: 4\r\nAccept: */*\r\n\r\nbody"),
            (0, "GET http://example.net HTTP/1.0\r\n\r\n"),
            (1, "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"),
            (1, "GET http://example.com/ HTTP/1.1\r\nProxy-Authorization: Basic d3Jvbmc6cGFzcw==\r\n\r\n"),
            (0, "GET /relative HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        ]
        return texts.flatMap { (c, t) in [[c, 0] + Array(t.utf8), [c, 1] + Array(t.utf8)] }
    }
    return 0
}
