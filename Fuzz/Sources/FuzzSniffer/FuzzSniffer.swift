import FuzzSupport
@testable import Shared

// The content sniffers (HTTP Host, TLS server name, BitTorrent) over a client's first bytes, as
// SniffingLink feeds them: after each read, on everything so far. Input: read-cut selector, bytes.
// What the link relies on is checked: once a prefix is decided (found or unknown), every longer
// input decides the same, so deciding early never differs from waiting. The policy then turns the
// result into a destination, which must be a valid address.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let bytes = Array(input.rest().prefix(ContentSniffer.window - 1))
    let whole = ContentSniffer.sniff(bytes[...])
    var seen = 0
    for piece in Pieces.split(bytes, selector: selector) {
        seen += piece.count
        let early = ContentSniffer.sniff(bytes[..<seen])
        if early != .needMore {
            precondition(early == whole, "decided \(early) after \(seen) bytes, \(whole) on all \(bytes.count)")
            break
        }
    }
    if let address = policy.apply(whole).address {
        precondition(address.encodedLength <= 257, "an address longer than a VMess request can carry")
    }
    return 0
}

let policy = try! SniffingPolicy(SniffingConfig(destOverride: ["http", "tls"]))

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        func hello(_ name: String) -> [UInt8] { TLSServerNameSniffer.minimalClientHello(serverName: name) }
        return [
            [0] + Array("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n".utf8),
            [3] + Array("POST /upload HTTP/1.1\r\nUser-Agent: x\r\nHOST: [2001:db8::1]\r\n\r\nbody".utf8),
            [1] + Array("GET / HTTP/1.0\r\n\r\n".utf8),
            [7] + hello("www.example.com"),
            [2] + hello("a.") + [23, 3, 3, 0, 0],
            [0] + [19] + Array("BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 48),
        ]
    }
    return 0
}
