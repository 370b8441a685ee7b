import XCTest
@testable import Shared

/// `listen` as a Unix socket, read as V2Ray and Xray read it (transport/internet/system_listener.go):
/// a path with an optional ",mode" (octal, exactly one comma), "@name" and "@@name" (padded) abstract
/// names; the port may be absent and is not used.
final class UnixListenConfigTests: XCTestCase {
    let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func v4(_ inbound: String) -> String {
        #"{"inbounds": [{"protocol": "vmess", \#(inbound), "settings": {"clients": [{"id": "\#(uuid)"}]}}], "outbounds": [{"protocol": "freedom"}]}"#
    }

    func inbound(_ text: String) throws -> InboundConfig {
        try ConfigParser.parse(text: text, sourceFile: "config.json").inbounds[0]
    }

    func error(_ text: String) -> String? { configErrorText(text) }

    func testForms() throws {
        let plain = try inbound(v4(#""listen": "/run/vmessd/in.sock""#))
        XCTAssertEqual(plain.unixSocket, UnixListenAddress(kind: .path, name: "/run/vmessd/in.sock"))
        XCTAssertEqual(plain.listen, "/run/vmessd/in.sock")
        XCTAssertEqual(plain.port, 0)

        // A port next to a Unix socket is dropped, as V2Ray does; a range does not make several inbounds.
        let moded = try ConfigParser.parse(text: v4(#""listen": "/run/in.sock,0666", "port": "1000-1003""#), sourceFile: "c").inbounds
        XCTAssertEqual(moded.count, 1)
        XCTAssertEqual(moded[0].unixSocket, UnixListenAddress(kind: .path, name: "/run/in.sock", mode: 0o666))
        XCTAssertEqual(moded[0].listen, "/run/in.sock", "the mode is not part of the address")
        XCTAssertEqual(try inbound(v4(#""listen": "/s,0600""#)).unixSocket?.mode, 0o600)
        XCTAssertEqual(try inbound(v4(#""listen": "/s,666""#)).unixSocket?.mode, 0o666, "octal without a leading 0 too")
        // Go's os.FileMode(n) then Chmod: only the permission bits of a plain number take effect.
        XCTAssertEqual(try inbound(v4(#""listen": "/s,4777""#)).unixSocket?.mode, 0o777)
        // More than one comma: V2Ray takes the whole text as the path.
        XCTAssertEqual(try inbound(v4(#""listen": "/a,b,c""#)).unixSocket, UnixListenAddress(kind: .path, name: "/a,b,c"))

        let abstract = try inbound(v4(#""listen": "@vmessd""#))
        XCTAssertEqual(abstract.unixSocket, UnixListenAddress(kind: .abstract, name: "vmessd"))
        XCTAssertEqual(abstract.listen, "@vmessd")
        // A comma in an abstract name is part of the name (no mode for abstract sockets).
        XCTAssertEqual(try inbound(v4(#""listen": "@a,0666""#)).unixSocket, UnixListenAddress(kind: .abstract, name: "a,0666"))
        XCTAssertEqual(try inbound(v4(#""listen": "@@vmessd""#)).unixSocket, UnixListenAddress(kind: .paddedAbstract, name: "vmessd"))

        // v5 reads `listen` the same way.
        let v5 = #"{"inbounds": [{"protocol": "vmess", "listen": "@@x", "settings": {"users": ["\#(uuid)"]}}]}"#
        XCTAssertEqual(try inbound(v5).unixSocket, UnixListenAddress(kind: .paddedAbstract, name: "x"))
        // An IP listen still needs its port.
        XCTAssertEqual(error(v4(#""listen": "127.0.0.1""#)), "config.json: inbounds[0]: missing required key \"port\"")
    }

    func testSunPathBytes() {
        XCTAssertEqual(UnixListenAddress(kind: .path, name: "/s").sunPath, [0x2F, 0x73, 0])
        XCTAssertEqual(UnixListenAddress(kind: .abstract, name: "ab").sunPath, [0, 0x61, 0x62])
        let padded = UnixListenAddress(kind: .paddedAbstract, name: "ab").sunPath
        XCTAssertEqual(padded.count, 108)
        XCTAssertEqual(Array(padded.prefix(4)), [0, 0x61, 0x62, 0])
        XCTAssertTrue(padded.dropFirst(3).allSatisfy { $0 == 0 })

        // What getsockname reports, with and without a path's NUL; abstract names compare exactly.
        XCTAssertTrue(UnixListenAddress(kind: .path, name: "/s").matches(sunPath: [0x2F, 0x73]))
        XCTAssertTrue(UnixListenAddress(kind: .path, name: "/s").matches(sunPath: [0x2F, 0x73, 0]))
        XCTAssertFalse(UnixListenAddress(kind: .path, name: "/s").matches(sunPath: [0, 0x2F, 0x73]))
        XCTAssertFalse(UnixListenAddress(kind: .abstract, name: "ab").matches(sunPath: padded))
        XCTAssertTrue(UnixListenAddress(kind: .paddedAbstract, name: "ab").matches(sunPath: padded))
    }

    func testErrors() {
        XCTAssertEqual(error(v4(#""listen": "/s,rw""#)),
                       "config.json: inbounds[0].listen: file mode \"rw\" after the comma is not an octal number like 0666")
        XCTAssertEqual(error(v4(#""listen": "/s,0888""#)),
                       "config.json: inbounds[0].listen: file mode \"0888\" after the comma is not an octal number like 0666")
        XCTAssertEqual(error(v4(#""listen": "/s,""#)),
                       "config.json: inbounds[0].listen: file mode \"\" after the comma is not an octal number like 0666")
        XCTAssertEqual(error(v4(#""listen": "@""#)), "config.json: inbounds[0].listen: the Unix socket name is empty")
        XCTAssertEqual(error(v4(#""listen": "@@""#)), "config.json: inbounds[0].listen: the Unix socket name is empty")
        let long = "/" + String(repeating: "a", count: 107)
        XCTAssertEqual(error(v4(#""listen": "\#(long)""#)),
                       "config.json: inbounds[0].listen: the Unix socket name is 108 bytes; at most 107 fit")
        XCTAssertNil(error(v4(#""listen": "\#(long.dropLast())""#)))
        XCTAssertEqual(error(v4(#""listen": "/s\u0000x""#)), "config.json: inbounds[0].listen: a Unix socket name cannot contain a NUL byte")
        XCTAssertEqual(error(v4(#""listen": "run/in.sock", "port": 1"#)),
                       "config.json: inbounds[0].listen: expected an IP address literal, a Unix socket path (\"/path\", \"/path,0666\") or an abstract name (\"@name\", \"@@name\"), got \"run/in.sock\"")

        // Things a Unix socket cannot do, named.
        XCTAssertEqual(error(v4(#""listen": "/s", "streamSettings": {"sockopt": {"tcpFastOpen": true}}"#)),
                       "config.json: inbounds[0]: socket options (sockopt / socketSettings) cannot be used with a Unix socket listen address (/s)")
        XCTAssertNil(error(v4(#""listen": "/s", "streamSettings": {"sockopt": {"acceptProxyProtocol": true}}"#)),
                     "the PROXY protocol is how a client address reaches a Unix socket")
        let dokodemo = #"{"inbounds": [{"protocol": "dokodemo-door", "listen": "@d", "settings": {"address": "1.1.1.1", "port": 53, "network": "tcp,udp"}}], "outbounds": [{"protocol": "freedom"}]}"#
        XCTAssertEqual(error(dokodemo), "config.json: inbounds[0]: dokodemo-door network \"udp\" cannot be used with a Unix socket listen address (@d)")
        let twice = #"{"inbounds": [{"protocol": "vmess", "listen": "/s", "settings": {"clients": [{"id": "\#(uuid)"}]}}, {"protocol": "vmess", "listen": "/s,0600", "settings": {"clients": [{"id": "\#(uuid)"}]}}], "outbounds": [{"protocol": "freedom"}]}"#
        XCTAssertEqual(error(twice), "config.json: inbounds[1].listen: Unix socket /s is already used by inbounds[0]")
    }
}
