// Inbound sniffing with the real V2Ray 4.34 client through vmessd (issue 8): a TLS ClientHello made by
// OpenSSL (Python's ssl module) routed by its server name, an HTTP request sent where its Host header
// says (destOverride), BitTorrent blocked by a `protocol` rule, and bytes no sniffer knows passed on
// at once. Every payload comes back from an echo target byte for byte: sniffing only looks.
//
//   v2ray client (dokodemo-door to ADDRESS:PORT) ──VMess──▶ vmessd ─sniff─▶ direct  (freedom)
//                                                                    ├─▶ special (freedom → echo "special")
//                                                                    └─▶ block   (blackhole)

import Foundation
import TestSupport
import XCTest

final class SniffingTests: EndToEndTestCase {
    func testSniffedNamesAndProtocolsRouteAndOverrideTheDestination() throws {
        let direct = try makeEchoServer()
        let special = try makeEchoServer()
        let alice = VMessTestUser("alice@example.com")
        let vmessPort = try FreePort.tcp()
        let extra: [String: Any] = [
            "inbounds": [[
                "port": Int(vmessPort), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in",
                "settings": ["clients": [alice.serverJSON]],
                "sniffing": ["enabled": true, "destOverride": ["http", "tls"]],
            ]],
            "outbounds": [
                ["protocol": "freedom", "tag": "direct", "settings": [String: Any]()],
                ["protocol": "freedom", "tag": "special", "settings": ["redirect": "127.0.0.1:\(special.port)"]],
                ["protocol": "blackhole", "tag": "block", "settings": [String: Any]()],
            ],
            "routing": ["rules": [
                ["type": "field", "domain": ["full:special.test"], "outboundTag": "special"],
                ["type": "field", "protocol": ["bittorrent"], "outboundTag": "block"],
            ]],
        ]
        let server = try startVMessd(users: [alice], workers: 1, port: vmessPort, extra: extra)

        func roundTrip(_ payload: Data, to address: String, _ port: UInt16) throws -> Bool {
            let client = try startClient(serverPort: server.port, user: alice, targetPort: port, targetAddress: address)
            defer { client.process.terminate(grace: 1) }
            return (try? ShortConnectionLoad.roundTrip(port: client.port, payload: payload, label: address, timeout: 5)) != nil
        }

        // TLS: the ClientHello names special.test; the client asked for the direct target's address.
        let hello = try Self.openSSLClientHello(serverName: "special.test")
        XCTAssertTrue(try roundTrip(hello + randomData(16 * 1024), to: "127.0.0.1", direct.port))
        XCTAssertEqual(special.connectionCount, 1, "routed by the sniffed server name")
        XCTAssertEqual(direct.connectionCount, 0)

        // HTTP: the client asked for 127.0.0.3, where nothing listens; the Host header says localhost,
        // and destOverride sends the request there (same port).
        let request = Data("GET /index.html HTTP/1.1\r\nHost: localhost:\(direct.port)\r\nAccept: */*\r\n\r\n".utf8)
        XCTAssertTrue(try roundTrip(request + randomData(8 * 1024), to: "127.0.0.3", direct.port))
        XCTAssertEqual(direct.connectionCount, 1, "the destination is the sniffed Host")
        // Without a name to go by, the same address reaches nothing.
        XCTAssertFalse(try roundTrip(randomData(1024), to: "127.0.0.3", direct.port))

        // BitTorrent's handshake: blocked by protocol.
        let bittorrent = Data([19] + Array("BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 8)) + randomData(48)
        XCTAssertFalse(try roundTrip(bittorrent, to: "127.0.0.1", direct.port))
        XCTAssertEqual(direct.connectionCount, 1)

        // Bytes no sniffer knows: routed as addressed.
        XCTAssertTrue(try roundTrip(Data("SSH-2.0-OpenSSH_9.2\r\n".utf8) + randomData(4096), to: "127.0.0.1", direct.port))
        XCTAssertEqual(direct.connectionCount, 2)
        XCTAssertEqual(special.connectionCount, 1)
    }

    /// The first flight of a real TLS client: OpenSSL through Python's ssl module (TLS 1.3 key shares,
    /// a session id, the server name), written to memory instead of a socket.
    static func openSSLClientHello(serverName: String) throws -> Data {
        let script = """
            import ssl, sys
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sys.argv[1])
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            sys.stdout.buffer.write(outgoing.read())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, serverName]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, bytes.count > 100, bytes.first == 22 else {
            throw HarnessError("python3 ssl did not produce a ClientHello (status \(process.terminationStatus), \(bytes.count) bytes)")
        }
        return bytes
    }
}
