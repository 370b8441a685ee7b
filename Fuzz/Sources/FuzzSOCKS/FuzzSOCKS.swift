@testable import FuzzSupport
import NIOCore
@testable import Shared
@testable import Worker

// The SOCKS inbound's handshake (SOCKS5 with and without RFC 1929 passwords, UDP ASSOCIATE, SOCKS4
// and 4a) and the SOCKS5 UDP datagram header. Input: configuration, read-cut selector, bytes.
//   configuration bits 0-1: 0 no auth, 1 password (alice/s3cret), 2 no auth + UDP, 3 password + UDP;
//                 bit 2: the bytes are one UDP datagram (SOCKSMessage.parseDatagram) instead.
// The handshake runs twice, over one read and over the fuzzed reads, and both runs must agree.

func settings(_ c: UInt8) -> SocksInboundSettings {
    var s = SocksInboundSettings()
    if c & 1 != 0 {
        s.auth = .password
        s.accounts = [ProxyAccount(user: "alice", pass: "s3cret")]
    }
    s.udp = c & 2 != 0
    return s
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let configuration = input.byte()
    let selector = input.byte()
    let bytes = input.rest()
    if configuration & 4 != 0 {
        if let (destination, payload) = SOCKSMessage.parseDatagram(ByteBuffer(bytes: bytes)) {
            precondition(payload.readableBytes <= bytes.count, "payload longer than the datagram")
            _ = SOCKSMessage.datagramHeader(source: destination)
        }
        return 0
    }
    let s = settings(configuration)
    let whole = HandshakeReplay.run(SOCKSHandshake(settings: s), bytes.isEmpty ? [] : [bytes[...]])
    let cut = HandshakeReplay.run(SOCKSHandshake(settings: s), Pieces.split(bytes, selector: selector))
    precondition(whole == cut, "outcome depends on the read boundaries: \(whole) vs \(cut)")
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let host = Array("example.com".utf8)
        let auth: [UInt8] = [1, 5] + Array("alice".utf8) + [6] + Array("s3cret".utf8)
        return [
            [0, 0] + [5, 1, 0] + [5, 1, 0, 3, 11] + host + [0x01, 0xBB] + Array("GET".utf8),
            [0, 1] + [5, 1, 0] + [5, 1, 0, 1, 127, 0, 0, 1, 0, 80],
            [0, 3] + [5, 1, 0] + [5, 1, 0, 4] + [UInt8](repeating: 0, count: 15) + [1, 0x01, 0xBB],
            [1, 0] + [5, 2, 0, 2] + auth + [5, 1, 0, 3, 11] + host + [0, 80],
            [2, 0] + [5, 1, 0] + [5, 3, 0, 1, 0, 0, 0, 0, 0, 0],
            [3, 7] + [5, 1, 2] + auth + [5, 3, 0, 1, 0, 0, 0, 0, 0, 0],
            [0, 0] + [4, 1, 0, 80, 1, 2, 3, 4] + Array("user".utf8) + [0],
            [0, 1] + [4, 1, 0, 80, 0, 0, 0, 1, 0] + host + [0] + Array("data".utf8),
            [0, 0] + [5, 1, 0] + [5, 2, 0, 1, 0, 0, 0, 0, 0, 0],
            [4, 0] + [0, 0, 0, 1, 8, 8, 8, 8, 0, 53] + Array("query".utf8),
            [4, 0] + [0, 0, 0, 3, 11] + host + [0, 53, 1],
        ]
    }
    return 0
}
