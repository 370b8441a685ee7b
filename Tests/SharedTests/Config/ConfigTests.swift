// Tests of the config layer: the upstream example configs, exact error messages for bad configs,
// JSONC comment handling, UUID text, Codable round trip and hostile input.

import Foundation
import XCTest

@testable import Shared

final class ConfigTests: XCTestCase {
    private var temporaryDirectory: URL!

    override func setUpWithError() throws {
        temporaryDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vmessd-config-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporaryDirectory)
    }

    // MARK: helpers

    private func fixtureURL(_ name: String) throws -> URL {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return root.appendingPathComponent("config").appendingPathComponent(name)
    }

    private func fixtureText(_ name: String) throws -> String {
        try String(contentsOf: fixtureURL(name), encoding: .utf8)
    }

    private func parse(_ text: String) throws -> Config {
        try ConfigParser.parse(text: text, sourceFile: "config.json")
    }

    /// The ConfigError `text` fails with (test failure if it parses or throws something else).
    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do {
            let config = try parse(text)
            XCTFail("expected an error, parsed \(config)", file: file, line: line)
        } catch let error as ConfigError {
            return error
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        }
        return nil
    }

    private func assertError(_ text: String, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(parseError(text, file: file, line: line)?.description, description, file: file, line: line)
    }

    /// A minimal v4 config around one inbound object (given as JSON text).
    private func v4(inbound: String, extra: String = "") -> String {
        """
        {"inbounds": [\(inbound)], "outbounds": [{"protocol": "freedom"}]\(extra)}
        """
    }

    private let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    private func vmessInbound(_ fields: String = "\"port\": 1080", clients: String? = nil) -> String {
        let clients = clients ?? "[{\"id\": \"\(uuid)\"}]"
        return "{\(fields), \"protocol\": \"vmess\", \"settings\": {\"clients\": \(clients)}}"
    }

    /// A self-signed P-256 certificate and key made by the openssl command line tool.
    private func makeCertificate() throws -> (certificate: String, key: String) {
        let certificate = temporaryDirectory.appendingPathComponent("crt.crt").path
        let key = temporaryDirectory.appendingPathComponent("key.key").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes", "-days", "1", "-subj", "/CN=test", "-keyout", key, "-out", certificate]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "openssl req failed")
        return (certificate, key)
    }

    // MARK: upstream examples

    func testUpstreamV4WebSocketTLSExample() throws {
        let (certificate, key) = try makeCertificate()
        let text = try fixtureText("vmess-ws-tls.v4.jsonc")
            .replacingOccurrences(of: "/root/crt.crt", with: certificate)
            .replacingOccurrences(of: "/root/key.key", with: key)
        let config = try ConfigParser.parse(text: text, sourceFile: "vmess-ws-tls.v4.jsonc")

        XCTAssertEqual(config.format, .v4)
        XCTAssertEqual(config.sourceFile, "vmess-ws-tls.v4.jsonc")
        XCTAssertEqual(config.log.level, .info)
        XCTAssertFalse(config.log.accessEnabled)
        XCTAssertEqual(config.inbounds.count, 1)
        let inbound = config.inbounds[0]
        XCTAssertEqual(inbound.port, 443)
        XCTAssertEqual(inbound.listen, "0.0.0.0")
        XCTAssertNil(inbound.tag)
        XCTAssertEqual(inbound.jsonPath, "inbounds[0]")
        guard case .vmess(let vmess) = inbound.settings else { return XCTFail("not vmess") }
        XCTAssertEqual(vmess.users, [VMessUser(id: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", alterId: 0, security: "auto")])
        XCTAssertEqual(inbound.stream.network, .ws)
        XCTAssertEqual(inbound.stream.ws?.path, "/guojixinwen")
        XCTAssertNil(inbound.stream.ws?.host)
        XCTAssertEqual(inbound.stream.security, .tls)
        let tls = try XCTUnwrap(inbound.stream.tls)
        XCTAssertEqual(tls.certificates.count, 1)
        XCTAssertTrue(tls.certificates[0].certificatePEM.contains("-----BEGIN CERTIFICATE-----"))
        XCTAssertTrue(tls.certificates[0].keyPEM.contains("PRIVATE KEY-----"))
        XCTAssertEqual(tls.certificates[0].certificateFile, certificate)
        XCTAssertEqual(tls.certificates[0].keyFile, key)
        XCTAssertEqual(config.outbounds.count, 1)
        XCTAssertEqual(config.outbounds[0].settings, .freedom(FreedomSettings()))
    }

    func testUpstreamV5HTTPUpgradeExample() throws {
        let path = try fixtureURL("vmess-httpupgrade.v5.jsonc").path
        let config = try ConfigParser.parse(fileAt: path)

        XCTAssertEqual(config.format, .v5)
        XCTAssertEqual(config.sourceFile, path)
        XCTAssertEqual(config.log.level, .info)
        XCTAssertNil(config.log.errorPath)
        XCTAssertFalse(config.log.accessEnabled)
        let inbound = try XCTUnwrap(config.inbounds.first)
        XCTAssertEqual(inbound.port, 80)
        XCTAssertEqual(inbound.listen, "0.0.0.0")
        guard case .vmess(let vmess) = inbound.settings else { return XCTFail("not vmess") }
        XCTAssertEqual(vmess.users, [VMessUser(id: "34455e67-fb2f-4fba-9b06-a633937a2263")])
        XCTAssertEqual(inbound.stream.network, .httpupgrade)
        XCTAssertEqual(inbound.stream.httpUpgrade?.path, "/download")
        XCTAssertEqual(inbound.stream.httpUpgrade?.host, "proxy.example.net")
        XCTAssertEqual(inbound.stream.security, .none)
        XCTAssertNil(inbound.stream.tls)
        XCTAssertEqual(config.outbounds.map(\.settings), [.freedom(FreedomSettings())])
    }

    func testUpstreamV4ExampleWithoutCertificateFails() throws {
        let path = try fixtureURL("vmess-ws-tls.v4.jsonc").path
        XCTAssertThrowsError(try ConfigParser.parse(fileAt: path)) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.path, "inbounds[0].streamSettings.tlsSettings.certificates[0].certificateFile")
            XCTAssertEqual(error.reason, "cannot read certificate file \"/root/crt.crt\": No such file or directory")
            XCTAssertNil(error.line)
            XCTAssertEqual(error.description, "\(path): inbounds[0].streamSettings.tlsSettings.certificates[0]"
                + ".certificateFile: cannot read certificate file \"/root/crt.crt\": No such file or directory")
        }
    }

    func testMissingKeyFileNamesTheKeyPath() throws {
        let (certificate, _) = try makeCertificate()
        let missing = temporaryDirectory.appendingPathComponent("absent.key").path
        let text = v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"security": "tls", "tlsSettings": {"certificates": [
              {"certificateFile": "\(certificate)", "keyFile": "\(missing)"}]}}
            """))
        assertError(text, "config.json: inbounds[0].streamSettings.tlsSettings.certificates[0].keyFile: "
            + "cannot read key file \"\(missing)\": No such file or directory")
    }

    func testCertificateFileMustBePEM() throws {
        let notPEM = temporaryDirectory.appendingPathComponent("der.crt")
        try Data([0x30, 0x82, 0x01, 0x00]).write(to: notPEM)
        let text = v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"security": "tls", "tlsSettings": {"certificates": [
              {"certificateFile": "\(notPEM.path)", "keyFile": "\(notPEM.path)"}]}}
            """))
        assertError(text, "config.json: inbounds[0].streamSettings.tlsSettings.certificates[0].certificateFile: "
            + "certificate file \"\(notPEM.path)\" is not PEM (no \"-----BEGIN\" line)")
    }

    func testInlineCertificateLinesV4() throws {
        let (certificateFile, keyFile) = try makeCertificate()
        let certificateLines = try String(contentsOfFile: certificateFile, encoding: .utf8).split(separator: "\n")
        let keyLines = try String(contentsOfFile: keyFile, encoding: .utf8).split(separator: "\n")
        func json(_ lines: [Substring]) -> String { "[" + lines.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let text = v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"network": "tcp", "security": "tls", "tlsSettings": {
              "serverName": "example.com", "alpn": ["h2", "http/1.1"], "minVersion": "1.2",
              "certificates": [{"usage": "encipherment", "certificate": \(json(certificateLines)), "key": \(json(keyLines))}]}}
            """))
        let tls = try XCTUnwrap(parse(text).inbounds[0].stream.tls)
        XCTAssertEqual(tls.serverName, "example.com")
        XCTAssertEqual(tls.alpn, ["h2", "http/1.1"])
        XCTAssertEqual(tls.minVersion, "1.2")
        XCTAssertEqual(tls.certificates[0].certificatePEM, try String(contentsOfFile: certificateFile, encoding: .utf8))
        XCTAssertNil(tls.certificates[0].certificateFile)
    }

    func testV5WebSocketTLS() throws {
        let (certificate, key) = try makeCertificate()
        let keyBase64 = try Data(contentsOf: URL(fileURLWithPath: key)).base64EncodedString()
        let text = """
            {
              "log": {"error": {"level": "Debug", "type": "File", "path": "/var/log/vmessd.log"},
                      "access": {"type": "Console"}},
              "inbounds": [{
                "protocol": "vmess", "port": "8443", "listen": "::",
                "settings": {"users": ["\(uuid.uppercased())"]},
                "streamSettings": {
                  "transport": "websocket",
                  "transportSettings": {"path": "ws", "header": [{"key": "Host", "value": "cdn.example"},
                                                                 {"key": "X-A", "value": "b"}],
                                        "max_early_data": 2048, "earlyDataHeaderName": "Sec-WebSocket-Protocol"},
                  "security": "tls",
                  "securitySettings": {"certificate": [{"certificateFile": "\(certificate)", "Key": "\(keyBase64)"}],
                                       "nextProtocol": ["http/1.1"], "minVersion": "TLS1_3"}
                }
              }]
            }
            """
        let config = try parse(text)
        XCTAssertEqual(config.format, .v5)
        XCTAssertEqual(config.log.level, .debug)
        XCTAssertEqual(config.log.errorPath, "/var/log/vmessd.log")
        XCTAssertTrue(config.log.accessEnabled)
        XCTAssertNil(config.log.accessPath)
        let inbound = config.inbounds[0]
        XCTAssertEqual(inbound.port, 8443)
        XCTAssertEqual(inbound.listen, "::")
        XCTAssertEqual(inbound.settings, .vmess(VMessInboundSettings(users: [VMessUser(id: uuid)])))
        XCTAssertEqual(inbound.stream.network, .ws)
        let ws = try XCTUnwrap(inbound.stream.ws)
        XCTAssertEqual(ws.path, "/ws")
        XCTAssertEqual(ws.host, "cdn.example")
        XCTAssertEqual(ws.headers, ["X-A": "b"])
        XCTAssertEqual(ws.maxEarlyData, 2048)
        XCTAssertEqual(ws.earlyDataHeaderName, "Sec-WebSocket-Protocol")
        let tls = try XCTUnwrap(inbound.stream.tls)
        XCTAssertEqual(tls.alpn, ["http/1.1"])
        XCTAssertEqual(tls.minVersion, "1.3")
        XCTAssertEqual(tls.certificates[0].keyPEM, try String(contentsOfFile: key, encoding: .utf8))
        XCTAssertEqual(tls.certificates[0].certificateFile, certificate)
        XCTAssertNil(tls.certificates[0].keyFile)
        // No outbounds: the lenient default is one freedom outbound.
        XCTAssertEqual(config.outbounds, [OutboundConfig(settings: .freedom(FreedomSettings()), jsonPath: "outbounds")])
    }

    // MARK: exact error messages

    func testEveryErrorIsReportedInOneRun() {
        let text = """
            {"inbounds": [{"port": 0, "protocol": "vmess", "settings": {"clients": [{"id": "\(uuid)"}]}},
                          {"port": 2, "protocol": "vmess", "settings": {"clients": [{"id": "\(uuid)", "alterid": 1}]}, "x": 1},
                          {"port": 3, "protocol": "socks"}],
             "outbounds": [{"protocol": "freedom", "tag": "a"}, {"protocol": "trojan"}, {"protocol": "freedom", "tag": "a"}],
             "routing": {"rules": [{"port": 1, "outboundTag": "a"}]},
             "policy": {"levels": {"0": {"handshake": "x"}}},
             "frobnicate": true, "reverse": {}}
            """
        guard let error = parseError(text) else { return }
        XCTAssertEqual(error.all.map(\.description), [
            "config.json: frobnicate: unknown key \"frobnicate\"",
            "config.json: reverse: \"reverse\" is not supported by vmessd yet",
            "config.json: inbounds[0].port: expected an integer 1-65535, got 0",
            "config.json: inbounds[1].settings.clients[0].alterid: unknown key \"alterid\"",
            "config.json: inbounds[1].x: unknown key \"x\"",
            "config.json: outbounds[1].protocol: protocol \"trojan\" is not supported yet",
            "config.json: outbounds[2].tag: duplicate tag \"a\" (also used by outbounds[0])",
            "config.json: policy.levels[\"0\"].handshake: expected an integer 0-4294967295, got \"x\"",
        ])
        // One line each, in that order, is what `vmessd test` prints.
        XCTAssertEqual(error.description, error.all.map(\.description).joined(separator: "\n"))
        // Routing is not checked while the outbounds it names failed (its errors would be echoes).
        XCTAssertFalse(error.description.contains("routing"))
    }

    /// v5 is read with protojson, which takes numbers written as strings; v4 (Go's encoding/json) does not.
    func testV5NumbersMayBeStrings() throws {
        let v5 = try parse("""
            {"inbounds": [{"protocol": "vmess", "port": "1", "settings": {"users": ["\(uuid)"]},
                           "streamSettings": {"transport": "websocket",
                                              "transportSettings": {"path": "/ws", "maxEarlyData": "2048"}}}]}
            """)
        XCTAssertEqual(v5.inbounds[0].stream.ws?.maxEarlyData, 2048)
        assertError(#"""
            {"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\#(uuid)"]},
                           "streamSettings": {"transport": "websocket", "transportSettings": {"maxEarlyData": "lots"}}}]}
            """#, "config.json: inbounds[0].streamSettings.transportSettings.maxEarlyData: expected an integer 0-2147483647, got \"lots\"")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"network\": \"ws\", \"wsSettings\": {\"maxEarlyData\": \"2048\"}}")),
                    "config.json: inbounds[0].streamSettings.wsSettings.maxEarlyData: expected an integer 0-2147483647, got \"2048\"")
    }

    func testSocketOptionsAndSendThrough() throws {
        let v4 = try parse("""
            {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"clients": [{"id": "\(uuid)"}]},
                           "streamSettings": {"sockopt": {"mark": 255, "tcpFastOpen": 512, "tcpKeepAliveIdle": 60,
                                                          "tcpKeepAliveInterval": 15, "tcpNoDelay": true, "tcpCongestion": "bbr",
                                                          "tcpUserTimeout": 10000, "interface": "eth0", "tproxy": "off"}}}],
             "outbounds": [{"protocol": "freedom", "sendThrough": "192.0.2.1",
                            "streamSettings": {"sockopt": {"mark": 2, "tcpFastOpen": true}}},
                           {"protocol": "vmess", "sendThrough": "2001:DB8::1", "settings": {"address": "a", "port": 1, "id": "\(uuid)"},
                            "streamSettings": {"network": "ws", "sockopt": {"tcpKeepAliveIdle": 30, "mark": 0}}}]}
            """)
        var inbound = SocketOptions()
        inbound.mark = 255
        inbound.tcpFastOpen = true
        inbound.tcpFastOpenQueueLength = 512
        inbound.tcpKeepAliveIdle = 60
        inbound.tcpKeepAliveInterval = 15
        inbound.tcpNoDelay = true
        inbound.tcpCongestion = "bbr"
        inbound.tcpUserTimeout = 10000
        inbound.interface = "eth0"
        XCTAssertEqual(v4.inbounds[0].stream.sockopt, inbound)
        XCTAssertEqual(v4.outbounds[0].sendThrough, "192.0.2.1")
        XCTAssertEqual(v4.outbounds[0].sockopt.mark, 2)
        XCTAssertEqual(v4.outbounds[0].sockopt.tcpFastOpen, true)
        XCTAssertEqual(v4.outbounds[1].sendThrough, "2001:db8::1")
        XCTAssertEqual(v4.outbounds[1].sockopt.tcpKeepAliveIdle, 30)
        XCTAssertNil(v4.outbounds[1].sockopt.mark, "mark 0 is no mark")
        guard case .vmess(let vmess) = v4.outbounds[1].settings else { return XCTFail("not vmess") }
        XCTAssertTrue(vmess.stream.sockopt.isEmpty, "one place: the outbound's")

        let v5 = try parse("""
            {"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\(uuid)"]},
                           "streamSettings": {"socketSettings": {"mark": "7", "tfo": "Enable", "tfoQueueLength": 64,
                                                                 "tcp_keep_alive_idle": 20, "bindToDevice": "lo", "tproxy": "Off"}}}]}
            """)
        XCTAssertEqual(v5.inbounds[0].stream.sockopt.mark, 7)
        XCTAssertEqual(v5.inbounds[0].stream.sockopt.tcpFastOpen, true)
        XCTAssertEqual(v5.inbounds[0].stream.sockopt.tcpFastOpenQueueLength, 64)
        XCTAssertEqual(v5.inbounds[0].stream.sockopt.tcpKeepAliveIdle, 20)
        XCTAssertEqual(v5.inbounds[0].stream.sockopt.interface, "lo")

        let o = "config.json: outbounds[0]"
        assertError(#"{"outbounds": [{"protocol": "freedom", "sendThrough": "origin"}]}"#,
                    "\(o).sendThrough: sendThrough \"origin\" is not supported by vmessd yet (only an IP address)")
        assertError(#"{"outbounds": [{"protocol": "freedom", "sendThrough": "eth0"}]}"#,
                    "\(o).sendThrough: expected an IP address literal, got \"eth0\"")
        assertError(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"sockopt": {"tproxy": "tproxy"}}}]}"#,
                    "\(o).streamSettings.sockopt.tproxy: tproxy \"tproxy\" is not supported by vmessd yet (only \"off\")")
        assertError(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"sockopt": {"tcpCongestion": "a b"}}}]}"#,
                    "\(o).streamSettings.sockopt.tcpCongestion: expected a name of 1-15 printable characters, got \"a b\"")
        assertError(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"sockopt": {"mark": -1}}}]}"#,
                    "\(o).streamSettings.sockopt.mark: expected an integer 0-4294967295, got -1")
        assertError(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"sockopt": {"sendThrough": "1.2.3.4"}}}]}"#,
                    "\(o).streamSettings.sockopt.sendThrough: unknown key \"sendThrough\"")
    }

    func testProxySettings() throws {
        func vmess(_ tag: String, _ extra: String = "") -> String {
            #"{"protocol": "vmess", "tag": "\#(tag)", "settings": {"address": "a", "port": 1, "id": "\#(uuid)"}\#(extra)}"#
        }
        let chain = try parse(#"{"outbounds": [\#(vmess("a", #", "proxySettings": {"tag": "b"}"#)), \#(vmess("b"))]}"#)
        XCTAssertEqual(chain.outbounds.map(\.proxyTag), ["b", nil])
        // With transportLayer the outbound keeps its transport over the proxied connection.
        let ws = try parse(#"{"outbounds": [\#(vmess("a", #", "streamSettings": {"network": "ws"}, "proxySettings": {"tag": "b", "transportLayer": true}"#)), \#(vmess("b"))]}"#)
        XCTAssertEqual(ws.outbounds[0].proxyTag, "b")
        XCTAssertNil(try parse(#"{"outbounds": [\#(vmess("a", #", "proxySettings": {"tag": ""}"#))]}"#).outbounds[0].proxyTag)

        let o = "config.json: outbounds"
        assertError(#"{"outbounds": [\#(vmess("a", #", "proxySettings": {"tag": "nowhere"}"#))]}"#,
                    "\(o)[0].proxySettings: no outbound has tag \"nowhere\"")
        assertError(#"{"outbounds": [\#(vmess("a", #", "proxySettings": {"tag": "b"}"#)), \#(vmess("b", #", "proxySettings": {"tag": "a"}"#))]}"#,
                    "\(o)[0].proxySettings: proxySettings chain comes back to outbounds[0] (a loop)")
        assertError(#"{"outbounds": [\#(vmess("a", #", "proxySettings": {"tag": "a"}"#))]}"#,
                    "\(o)[0].proxySettings: proxySettings chain comes back to outbounds[0] (a loop)")
        XCTAssertEqual(try parse(#"{"outbounds": [{"protocol": "freedom", "proxySettings": {"tag": "b"}}, \#(vmess("b"))]}"#)
            .outbounds[0].proxyTag, "b")
        assertError(#"{"outbounds": [{"protocol": "blackhole", "proxySettings": {"tag": "b"}}, \#(vmess("b"))]}"#,
                    "\(o)[0].proxySettings: proxySettings has no effect on a blackhole outbound")
        assertError(#"{"outbounds": [{"protocol": "freedom", "settings": {"domainStrategy": "UseIP"}, "proxySettings": {"tag": "b"}}, \#(vmess("b"))]}"#,
                    "\(o)[0].proxySettings: a freedom outbound dialed through proxySettings takes domainStrategy AsIs only")
        assertError(#"{"outbounds": [\#(vmess("a", #", "streamSettings": {"network": "ws"}, "proxySettings": {"tag": "b"}"#)), \#(vmess("b"))]}"#,
                    "\(o)[0].proxySettings: the outbound's streamSettings have no effect through proxySettings unless \"transportLayer\" is true")
        assertError(#"{"outbounds": [\#(vmess("a", #", "sendThrough": "127.0.0.2", "proxySettings": {"tag": "b"}"#)), \#(vmess("b"))]}"#,
                    "\(o)[0].proxySettings: sendThrough and sockopt have no effect on an outbound dialed through proxySettings (set them on the proxy's outbound)")
    }

    /// Dynamic port: the detour inbound gets one derived user per user of the inbounds that detour to
    /// it (the same id in every worker and run), and the source learns its ports.
    func testDetour() throws {
        let config = try parse("""
            {"inbounds": [{"port": 1, "protocol": "vmess", "tag": "main",
                           "settings": {"clients": [{"id": "\(uuid)", "email": "a@x"}], "detour": {"to": "dyn"}}},
                          {"port": "2000-2001", "protocol": "vmess", "tag": "dyn", "settings": {"default": {"level": 1, "alterId": 4}}}],
             "outbounds": [{"protocol": "freedom"}]}
            """)
        guard case .vmess(let main) = config.inbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(main.detour, DetourTarget(tag: "dyn", ports: [2000, 2001], alterId: 4, level: 1))
        let derived = UserID(text: uuid)!.detour(tag: "dyn")
        XCTAssertEqual(derived, UserID(text: uuid)!.detour(tag: "dyn"), "deterministic")
        XCTAssertNotEqual(derived, UserID(text: uuid)!.detour(tag: "other"))
        for inbound in config.inbounds[1...] {
            guard case .vmess(let target) = inbound.settings else { return XCTFail("not vmess") }
            XCTAssertEqual(target.users, [VMessUser(id: derived.text, alterId: 4, level: 1, email: "a@x")])
        }
        assertError(#"{"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"default": {"alterId": 0}}}]}"#,
                    "config.json: inbounds[0].settings: a vmess inbound needs at least one client (or to be the target of a detour)")
        assertError(#"""
            {"inbounds": [{"port": 1, "protocol": "vmess", "tag": "a", "settings": {"clients": [{"id": "\#(uuid)"}], "detour": {"to": "s"}}},
                          {"port": 2, "protocol": "socks", "tag": "s"}]}
            """#, "config.json: inbounds[0].settings.detour.to: the detour inbound \"s\" is not a vmess inbound")
    }

    /// allocate "random": the parser keeps every port, `PortAllocation.select` keeps `concurrency` of
    /// them per inbound, and the inbounds detouring there learn the chosen ports and their end.
    func testRandomPortAllocation() throws {
        let config = try parse("""
            {"inbounds": [{"port": 1, "protocol": "vmess", "tag": "main",
                           "settings": {"clients": [{"id": "\(uuid)"}], "detour": {"to": "dyn"}}},
                          {"port": "2000-2003", "protocol": "vmess", "tag": "dyn", "settings": {},
                           "allocate": {"strategy": "random", "refresh": 3, "concurrency": 2}}],
             "outbounds": [{"protocol": "freedom"}]}
            """)
        XCTAssertEqual(config.inbounds.count, 5)
        XCTAssertEqual(config.inbounds[1].allocation, PortAllocation(refreshMinutes: 3, concurrency: 2))
        XCTAssertEqual(PortAllocation.refreshInterval(config), 180)
        var picks = [3, 0]  // indices into what is left: port 2003, then 2000
        let selected = PortAllocation.select(config, now: 1_000) { _ in picks.removeFirst() }
        XCTAssertEqual(selected.inbounds.map(\.port), [1, 2000, 2003])
        guard case .vmess(let main) = selected.inbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(main.detour?.ports, [2000, 2003])
        XCTAssertEqual(main.detour?.validUntil, 1_000 + 180)
        // Without random allocations the config is left as it is.
        let plain = try parse(v4(inbound: vmessInbound("\"port\": \"5-6\"")))
        XCTAssertEqual(PortAllocation.select(plain, now: 0), plain)
        XCTAssertNil(PortAllocation.refreshInterval(plain))

        assertError(v4(inbound: vmessInbound("\"port\": \"5-6\", \"allocate\": {\"strategy\": \"random\"}")),
                    "config.json: inbounds[0]: allocate concurrency 3 is more than the 2 port(s) the inbound has")
        assertError(v4(inbound: vmessInbound("\"port\": 5, \"allocate\": {\"strategy\": \"sometimes\"}")),
                    "config.json: inbounds[0].allocate: allocate strategy \"sometimes\" is unknown (\"always\" or \"random\")")
    }

    /// The switch-account command's bytes (vmess-protocol.md §8.5) both ways.
    func testSwitchAccountCommand() {
        let id = UserID(text: uuid)!
        let command = SwitchAccountCommand(port: 10_001, id: id, alterIds: 32, level: 1, validMinutes: 255)
        let data = command.encode()
        XCTAssertEqual(data.count, 4 + 1 + 2 + 16 + 2 + 1 + 1)
        XCTAssertEqual(Array(data[4..<7]), [0, 0x27, 0x11])
        XCTAssertEqual(SwitchAccountCommand.decode(data), command)
        var bad = data
        bad[10] ^= 1
        XCTAssertNil(SwitchAccountCommand.decode(bad), "a bad checksum is ignored")
        XCTAssertNil(SwitchAccountCommand.decode(data.prefix(20)))
        XCTAssertEqual(ResponseHeader.plain(responseAuth: 7, command: command), [7, 0, 1, UInt8(data.count)] + data)
    }

    /// A command's data must fit the header's one-byte length, and decoding gives back exactly the
    /// bytes that came: a host that is not UTF-8 (FuzzSwitchAccount's find: its bytes came back as
    /// U+FFFD) or longer than can be sent is no command.
    func testSwitchAccountCommandHostBounds() {
        let id = UserID(text: uuid)!
        let long = SwitchAccountCommand(host: String(repeating: "h", count: 300), port: 1, id: id, alterIds: 0, level: 0,
                                        validMinutes: 1)
        let data = long.encode()
        XCTAssertEqual(data.count, 255, "the longest host fills the one-byte length exactly")
        XCTAssertEqual(SwitchAccountCommand.decode(data)?.host.utf8.count, SwitchAccountCommand.maxHostBytes)
        XCTAssertEqual(ResponseHeader.plain(responseAuth: 0, command: long).count, 4 + 255)

        func withChecksum(_ body: [UInt8]) -> [UInt8] {
            let sum = Checksum.fnv1a32(body)
            return [UInt8(sum >> 24), UInt8(sum >> 16 & 0xFF), UInt8(sum >> 8 & 0xFF), UInt8(sum & 0xFF)] + body
        }
        let tail = [UInt8](repeating: 0, count: 22)
        let notUTF8: [UInt8] = [4, 0x68, 0xDC, 0xDC, 0x6F]
        XCTAssertNil(SwitchAccountCommand.decode(withChecksum(notUTF8 + tail)), "a host that is not UTF-8")
        let tooLong = [UInt8(SwitchAccountCommand.maxHostBytes + 1)]
            + [UInt8](repeating: 0x68, count: SwitchAccountCommand.maxHostBytes + 1)
        XCTAssertNil(SwitchAccountCommand.decode(withChecksum(tooLong + tail)), "a host longer than can be sent")
        XCTAssertNotNil(SwitchAccountCommand.decode(withChecksum([2, 0x68, 0x69] + tail)))
    }

    func testSniffing() throws {
        // Xray's server configs: enabled with routeOnly and exclusions.
        let xray = try parse(v4(inbound: vmessInbound("""
            "port": 1, "sniffing": {"enabled": true, "destOverride": ["HTTP", "tls"], "routeOnly": true,
                                    "domainsExcluded": ["courier.push.apple.com", "regexp:^mtalk\\\\.", "domain:icloud.com"]}
            """)))
        var excluded = DomainSet()
        excluded.full = ["courier.push.apple.com"]
        excluded.regexes = ["^mtalk\\."]
        excluded.rootDomains = ["icloud.com"]
        XCTAssertEqual(xray.inbounds[0].sniffing, SniffingConfig(destOverride: ["http", "tls"], routeOnly: true, domainsExcluded: excluded))
        // Disabled: nothing sniffed, and keys vmessd does not sniff yet are harmless there.
        let off = try parse(v4(inbound: vmessInbound("\"port\": 1, \"sniffing\": {\"enabled\": false, \"destOverride\": [\"quic\"]}")))
        XCTAssertNil(off.inbounds[0].sniffing)
        XCTAssertNil(try parse(v4(inbound: vmessInbound("\"port\": 1, \"sniffing\": {}"))).inbounds[0].sniffing)
        // v5: the same object on the inbound.
        let v5 = try parse("""
            {"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\(uuid)"]},
                           "sniffing": {"enabled": true, "destOverride": ["http"], "metadataOnly": false}}]}
            """)
        XCTAssertEqual(v5.inbounds[0].sniffing, SniffingConfig(destOverride: ["http"]))
    }

    func testBadUUID() {
        let clients = "[{\"id\": \"\(uuid)\"}, {\"id\": \"xyz\"}]"
        assertError(v4(inbound: vmessInbound(clients: clients)),
                    "config.json: inbounds[0].settings.clients[1].id: invalid UUID \"xyz\"")
        assertError(#"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["not-a-uuid"]}}]}"#,
                    "config.json: inbounds[0].settings.users[0]: invalid UUID \"not-a-uuid\"")
    }

    func testUnknownAndUnsupportedProtocols() {
        assertError(v4(inbound: #"{"port": 1, "protocol": "xyz"}"#),
                    "config.json: inbounds[0].protocol: unknown protocol \"xyz\"")
        assertError(v4(inbound: #"{"port": 1, "protocol": "shadowsocks", "settings": {}}"#),
                    "config.json: inbounds[0].protocol: protocol \"shadowsocks\" is not supported yet")
        assertError(v4(inbound: #"{"port": 1, "protocol": "trojan"}"#),
                    "config.json: inbounds[0].protocol: protocol \"trojan\" is not supported yet")
        assertError(#"{"outbounds": [{"protocol": "vless", "settings": {}}]}"#,
                    "config.json: outbounds[0].protocol: protocol \"vless\" is not supported yet")
        assertError(#"{"outbounds": [{"protocol": "warp"}]}"#,
                    "config.json: outbounds[0].protocol: unknown protocol \"warp\"")
    }

    func testPorts() throws {
        assertError(v4(inbound: vmessInbound("\"port\": 0")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got 0")
        assertError(v4(inbound: vmessInbound("\"port\": 70000")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got 70000")
        assertError(v4(inbound: vmessInbound("\"port\": true")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got boolean")
        assertError(v4(inbound: vmessInbound("\"port\": 443.5")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got 443.5")
        assertError(v4(inbound: vmessInbound("\"port\": \"1000-2000\"")),
                    "config.json: inbounds[0].port: \"1000-2000\" names more than 256 ports")
        assertError(v4(inbound: vmessInbound("\"port\": \"0-3\"")),
                    "config.json: inbounds[0].port: port 0 in \"0-3\" (ports are 1-65535)")
        assertError(v4(inbound: vmessInbound("\"port\": \"10-5\"")),
                    "config.json: inbounds[0].port: invalid port or range \"10-5\" (expected ports 0-65535 like \"53,443,1000-2000\")")
        // A range or a list: one inbound per port (each its own socket group), same settings and tag.
        let ranged = try parse(v4(inbound: vmessInbound("\"port\": \"10000-10002, 443,10001\", \"tag\": \"in\"")))
        XCTAssertEqual(ranged.inbounds.map(\.port), [10000, 10001, 10002, 443])
        XCTAssertEqual(Set(ranged.inbounds.map(\.tag)), ["in"])
        XCTAssertEqual(Set(ranged.inbounds.map(\.jsonPath)), ["inbounds[0]"])
        assertError(#"{"inbounds": [\#(vmessInbound("\"port\": \"20-22\"")), \#(vmessInbound("\"port\": 21"))]}"#,
                    "config.json: inbounds[1].port: port 21 on 0.0.0.0 is already used by inbounds[0]")
        assertError(v4(inbound: vmessInbound("\"port\": \"https\"")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got \"https\"")
        assertError(v4(inbound: vmessInbound("\"listen\": \"1.2.3.4\"")),
                    "config.json: inbounds[0]: missing required key \"port\"")
        XCTAssertEqual(try parse(v4(inbound: vmessInbound("\"port\": \"443\""))).inbounds[0].port, 443)
    }

    func testTruncatedJSONReportsLineAndColumn() {
        let text = "{\n  \"inbounds\": [\n    {\"port\": 1"
        let error = parseError(text)
        XCTAssertEqual(error?.line, 3)
        XCTAssertEqual(error?.column, 15)
        XCTAssertEqual(error?.path, "")
        XCTAssertEqual(error?.description, "config.json:3:15: syntax error: unexpected end of input")
        assertError("{\"log\": {}", "config.json:1:11: syntax error: unexpected end of input")
        assertError("{\"log\": \"abc", "config.json:1:13: syntax error: unexpected end of input")
    }

    func testSyntaxErrorPositionCountsCommentsAndWideCharacters() {
        // Line 3 holds a comment of Chinese text before the offending token; columns count characters.
        let text = """
            {
              // 这里是注释
              "log": {} /* 注释 */ "inbounds": []
            }
            """
        assertError(text, "config.json:3:22: syntax error: expected ',' or '}'")
        assertError(#"{"a": 1 "b": 2}"#, "config.json:1:9: syntax error: expected ',' or '}'")
        assertError("[1 2]", "config.json:1:4: syntax error: expected ',' or ']'")
        assertError("{\"a\": tru}", "config.json:1:7: syntax error: invalid literal (expected true)")
        assertError("{\"a\": 01}", "config.json:1:7: syntax error: invalid number: leading zero")
        assertError("{\"a\": 1} x", "config.json:1:10: syntax error: unexpected character 'x' after the end of the document")
        assertError("{/* open", "config.json:1:2: syntax error: unterminated /* comment")
        assertError("{\"a\": 1 / 2}", "config.json:1:9: syntax error: unexpected character '/'")
        assertError("{\"a\": 1, \"a\": 2}", "config.json:1:10: syntax error: duplicate key \"a\"")
    }

    func testUnsupportedAndUnknownKeys() {
        assertError(#"{"reverse": {}, "inbounds": []}"#,
                    "config.json: reverse: \"reverse\" is not supported by vmessd yet")
        assertError(#"{"inbounds": [], "fakedns": {}}"#, "config.json: fakedns: \"fakedns\" is not supported by vmessd yet")
        assertError(#"{"inbounds": [], "frobnicate": 1}"#, "config.json: frobnicate: unknown key \"frobnicate\"")
        let detour = "{\"port\": 1, \"protocol\": \"vmess\", \"settings\": {\"clients\": [{\"id\": \"\(uuid)\"}], \"detour\": {\"to\": \"dyn\"}}}"
        assertError(v4(inbound: detour), "config.json: inbounds[0].settings.detour.to: no inbound has tag \"dyn\"")
        let clients = "[{\"id\": \"\(uuid)\", \"foo\": 1}]"
        assertError(v4(inbound: vmessInbound(clients: clients)),
                    "config.json: inbounds[0].settings.clients[0].foo: unknown key \"foo\"")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"sniffing\": {\"enabled\": true, \"destOverride\": [\"http\", \"quic\"]}")),
                    "config.json: inbounds[0].sniffing.destOverride[1]: sniffing \"quic\" is not supported by vmessd yet (it sniffs \"http\" and \"tls\")")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"sniffing\": {\"enabled\": true, \"destOverride\": [\"ftp\"]}")),
                    "config.json: inbounds[0].sniffing.destOverride[0]: expected \"http\" or \"tls\", got \"ftp\"")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"sniffing\": {\"enabled\": true, \"sniff\": 1}")),
                    "config.json: inbounds[0].sniffing.sniff: unknown key \"sniff\"")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"network\": \"quic\"}")),
                    "config.json: inbounds[0].streamSettings.network: transport \"quic\" is not supported by vmessd yet")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"security\": \"reality\"}")),
                    "config.json: inbounds[0].streamSettings.security: security \"reality\" is not supported by vmessd yet")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"wsSettings\": {\"path\": \"/x\"}}")),
                    "config.json: inbounds[0].streamSettings.wsSettings: \"wsSettings\" has no effect unless network is \"ws\"")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"sockopt\": {\"dialerProxy\": \"x\"}}")),
                    "config.json: inbounds[0].streamSettings.sockopt.dialerProxy: \"dialerProxy\" is not supported by vmessd yet")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"streamSettings\": {\"security\": \"tls\"}")),
                    "config.json: inbounds[0].streamSettings: TLS on an inbound needs at least one certificate")
        assertError(#"{"outbounds": [{"protocol": "freedom", "mux": {"enabled": true}}]}"#,
                    "config.json: outbounds[0].mux.enabled: \"mux\" is not supported by vmessd yet (set \"enabled\" to false)")
        assertError(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"network": "ws"}}]}"#,
                    "config.json: outbounds[0].streamSettings: \"network\" has no effect on a freedom outbound (its streamSettings can only hold socket options)")
        // Accepted no-ops: disabled sniffing, the default allocation strategy, empty sockopt, mux off.
        XCTAssertNoThrow(try parse(v4(inbound: vmessInbound("""
            "port": 1, "sniffing": {"enabled": false, "destOverride": ["http"]}, "allocate": {"strategy": "always"},
            "streamSettings": {"sockopt": {}}
            """))))
        XCTAssertNoThrow(try parse(#"{"outbounds": [{"protocol": "freedom", "mux": {"enabled": false, "concurrency": 8}}]}"#))
    }

    func testDuplicates() {
        let a = vmessInbound("\"port\": 1, \"tag\": \"a\"")
        let b = vmessInbound("\"port\": 2, \"tag\": \"a\"")
        assertError(v4(inbound: a + "," + b), "config.json: inbounds[1].tag: duplicate tag \"a\" (also used by inbounds[0])")
        assertError(#"{"outbounds": [{"protocol": "freedom", "tag": "x"}, {"protocol": "blackhole", "tag": "x"}]}"#,
                    "config.json: outbounds[1].tag: duplicate tag \"x\" (also used by outbounds[0])")
        let clients = "[{\"id\": \"\(uuid)\"}, {\"id\": \"\(uuid.replacingOccurrences(of: "-", with: ""))\"}]"
        assertError(v4(inbound: vmessInbound(clients: clients)),
                    "config.json: inbounds[0].settings.clients[1].id: duplicate client id \"\(uuid)\" (also inbounds[0].settings.clients[0])")
        let c = vmessInbound("\"port\": 443, \"listen\": \"::0\"")
        let d = vmessInbound("\"port\": 443, \"listen\": \"::\"")
        assertError(v4(inbound: c + "," + d), "config.json: inbounds[1].port: port 443 on :: is already used by inbounds[0]")
    }

    func testWrongTypes() {
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"listen\": 5")),
                    "config.json: inbounds[0].listen: expected a string, got 5")
        assertError(v4(inbound: vmessInbound("\"port\": 1, \"listen\": \"localhost\"")),
                    "config.json: inbounds[0].listen: expected an IP address literal, a Unix socket path (\"/path\", \"/path,0666\") or an abstract name (\"@name\", \"@@name\"), got \"localhost\"")
        assertError(v4(inbound: vmessInbound(clients: "{}")),
                    "config.json: inbounds[0].settings.clients: expected an array, got object")
        assertError(v4(inbound: vmessInbound(clients: "[]")),
                    "config.json: inbounds[0].settings: a vmess inbound needs at least one client (or to be the target of a detour)")
        assertError(v4(inbound: vmessInbound(clients: "[{\"id\": \"\(uuid)\", \"alterId\": -1}]")),
                    "config.json: inbounds[0].settings.clients[0].alterId: expected an integer 0-65535, got -1")
        assertError(v4(inbound: vmessInbound(clients: "[{\"id\": \"\(uuid)\", \"security\": \"aes-256-cfb\"}]")),
                    "config.json: inbounds[0].settings.clients[0].security: expected one of aes-128-gcm, "
                        + "chacha20-poly1305, auto, none, zero, got \"aes-256-cfb\"")
        assertError(#"{"inbounds": {}}"#, "config.json: inbounds: expected an array, got object")
        assertError("[]", "config.json: expected an object, got array")
        assertError(#"{"log": {"loglevel": "verbose"}}"#,
                    "config.json: log.loglevel: expected one of debug, info, warning, error, none, got \"verbose\"")
        assertError(#"{"vmessd": {"workers": 0}}"#, "config.json: vmessd.workers: expected an integer >= 1, got 0")
        assertError(#"{"policy": {"levels": {"x": {}}}}"#,
                    "config.json: policy.levels.x: a level key must be a decimal number 0-4294967295, got \"x\"")
        assertError(#"{"policy": {"levels": {"0": {"handshake": "4"}}}}"#,
                    "config.json: policy.levels[\"0\"].handshake: expected an integer 0-4294967295, got \"4\"")
    }

    func testEmptyFile() {
        assertError("", "config.json: the file is empty (no JSON value)")
        assertError("  // only a comment\n/* and another */\n", "config.json: the file is empty (no JSON value)")
        let path = temporaryDirectory.appendingPathComponent("absent.json").path
        XCTAssertThrowsError(try ConfigParser.parse(fileAt: path)) { error in
            XCTAssertEqual((error as? ConfigError)?.description,
                           "\(path): cannot read config file: No such file or directory")
        }
    }

    // MARK: comments

    func testCommentsAreSkippedButNotInsideStrings() throws {
        let text = """
            // leading comment
            /* block
               comment */ {
              "log": { /* inside */ "loglevel": "debug" // trailing
              },
              "inbounds": [ // a list
                {
                  "port": /* before a value */ 8080,
                  "protocol": "vmess",
                  "settings": {"clients": [{"id": "\(uuid)", "email": "http://x/*not a comment*/ // nor this"}]},
                  "streamSettings": {"network": "ws", "wsSettings": {"path": "/a//b", "headers": {"X-Url": "http://x"}}}
                },
              ],
            }
            // trailing comment without a newline
            """
        let config = try parse(text)
        XCTAssertEqual(config.log.level, .debug)
        XCTAssertEqual(config.inbounds[0].port, 8080)
        guard case .vmess(let vmess) = config.inbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(vmess.users[0].email, "http://x/*not a comment*/ // nor this")
        XCTAssertEqual(config.inbounds[0].stream.ws?.path, "/a//b")
        XCTAssertEqual(config.inbounds[0].stream.ws?.headers, ["X-Url": "http://x"])
    }

    func testJSONCValueTree() throws {
        let tree = try JSONC.parse(Array(#"{"b": [1, -2.5e3, true, null], "a": "\u00e9\ud83d\ude00\n"}"#.utf8))
        let expected = JSONValue.object(JSONObject([
            .init(key: "b", value: .array([.number("1"), .number("-2.5e3"), .bool(true), .null])),
            .init(key: "a", value: .string("é😀\n")),
        ]))
        XCTAssertEqual(tree, expected)  // member order is kept
    }

    // MARK: UUID text

    func testCanonicalUUID() {
        XCTAssertEqual(canonicalUUID("6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"), "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")
        XCTAssertEqual(canonicalUUID("6225d026dfda4bcca5f507cd22fc0c8f"), "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")
        XCTAssertEqual(canonicalUUID("6225D026-DFDA-4BCC-A5F5-07CD22FC0C8F"), "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")
        XCTAssertEqual(canonicalUUID("6225d026-dfda4bcc-a5f507cd22fc0c8f"), "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")
        XCTAssertEqual(canonicalUUID("-6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"), "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")
        XCTAssertNil(canonicalUUID(""))
        XCTAssertNil(canonicalUUID("6225d026-dfda-4bcc-a5f5-07cd22fc0c8"))  // one digit short
        XCTAssertNil(canonicalUUID("6225d026-dfda-4bcc-a5f5-07cd22fc0c8f0"))  // one digit long
        XCTAssertNil(canonicalUUID("6225d026-dfda-4bcc-a5f5-07cd22fc0c8g"))  // not hex
        XCTAssertNil(canonicalUUID("6225d02-6dfda-4bcc-a5f5-07cd22fc0c8f"))  // dash inside a group
        XCTAssertNil(canonicalUUID("6225d026--dfda-4bcc-a5f5-07cd22fc0c8f"))  // two dashes
        XCTAssertNil(canonicalUUID("6225d026-dfda-4bcc-a5f5-07cd22fc0c8f-"))  // trailing text
        XCTAssertNil(canonicalUUID("hello"))  // Xray's UUIDv5 mapping is not applied
        XCTAssertNil(canonicalUUID("６２２５d026-dfda-4bcc-a5f5-07cd22fc0c8f"))  // full-width digits
    }

    // MARK: Codable, demo, other sections

    func testCodableRoundTrip() throws {
        let (certificate, key) = try makeCertificate()
        let text = try fixtureText("vmess-ws-tls.v4.jsonc")
            .replacingOccurrences(of: "/root/crt.crt", with: certificate)
            .replacingOccurrences(of: "/root/key.key", with: key)
            .replacingOccurrences(of: "\"log\": {", with: """
                "policy": {"levels": {"0": {"handshake": 4, "connIdle": 300, "bufferSize": 64}}},
                "vmessd": {"workers": 2, "drainTimeout": 2.5, "control": "/run/vmessd.sock"},
                "log": {
                """)
        for config in [try ConfigParser.parse(text: text, sourceFile: "a.json"),
                       try ConfigParser.parse(fileAt: fixtureURL("vmess-httpupgrade.v5.jsonc").path),
                       ConfigParser.demo(uuid: uuid, port: 10086)] {
            let data = try JSONEncoder().encode(config)
            XCTAssertEqual(try JSONDecoder().decode(Config.self, from: data), config)
        }
        let config = try ConfigParser.parse(text: text, sourceFile: "a.json")
        XCTAssertEqual(config.policy.level(0).handshake, 4)
        XCTAssertEqual(config.policy.level(0).bufferSize, 64)
        XCTAssertEqual(config.policy.level(1), LevelPolicy())
        XCTAssertEqual(config.daemon.workers, 2)
        XCTAssertEqual(config.daemon.drainTimeout, 2.5)
        XCTAssertEqual(config.daemon.control, "/run/vmessd.sock")
    }

    func testDemoConfigAndRequireInbound() throws {
        let demo = ConfigParser.demo(uuid: uuid.uppercased(), port: 10086)
        XCTAssertEqual(demo.format, .v4)
        XCTAssertEqual(demo.inbounds.count, 1)
        XCTAssertEqual(demo.inbounds[0].listen, "127.0.0.1")
        XCTAssertEqual(demo.inbounds[0].port, 10086)
        XCTAssertEqual(demo.inbounds[0].settings, .vmess(VMessInboundSettings(users: [VMessUser(id: uuid, security: "auto")])))
        XCTAssertEqual(demo.outbounds.map(\.settings), [.freedom(FreedomSettings())])
        XCTAssertNoThrow(try demo.requireInbound())

        let empty = try parse("{}")
        XCTAssertTrue(empty.inbounds.isEmpty)
        XCTAssertThrowsError(try empty.requireInbound()) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "config.json: inbounds: no inbounds")
        }
    }

    func testLogAndOutboundVariants() throws {
        let config = try parse("""
            {"log": {"loglevel": "Warning", "access": "", "error": "/var/log/e.log"},
             "outbounds": [{"protocol": "freedom", "tag": "direct",
                            "settings": {"domainStrategy": "UseIPv4", "redirect": "[::1]:8080", "userLevel": 0}},
                           {"protocol": "blackhole", "settings": {"response": {"type": "http"}}}]}
            """)
        XCTAssertEqual(config.log.level, .warning)
        XCTAssertTrue(config.log.accessEnabled)
        XCTAssertNil(config.log.accessPath)
        XCTAssertEqual(config.log.errorPath, "/var/log/e.log")
        var freedom = FreedomSettings()
        freedom.domainStrategy = .useIPv4
        freedom.redirectHost = "::1"
        freedom.redirectPort = 8080
        var blackhole = BlackholeSettings()
        blackhole.httpResponse = true
        XCTAssertEqual(config.outbounds, [
            OutboundConfig(tag: "direct", settings: .freedom(freedom), jsonPath: "outbounds[0]"),
            OutboundConfig(settings: .blackhole(blackhole), jsonPath: "outbounds[1]"),
        ])
        assertError(#"{"outbounds": [{"protocol": "freedom", "settings": {"redirect": "::1:80"}}]}"#,
                    "config.json: outbounds[0].settings.redirect: expected \"host:port\" (put IPv6 addresses in brackets), got \"::1:80\"")
        XCTAssertEqual(try parse(#"{"log": {"access": "/var/log/a.log", "error": "none"}}"#).log.level, .none)
    }

    func testFormatDetection() throws {
        XCTAssertEqual(try parse("{}").format, .v4)
        XCTAssertEqual(try parse(#"{"log": {"access": {"type": "None"}}}"#).format, .v5)
        XCTAssertEqual(try parse(#"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\#(uuid)"]}}]}"#).format, .v5)
        // A v4 key in a file detected as v5 is named, not ignored.
        assertError(#"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\#(uuid)"]}, "streamSettings": {"network": "ws"}}]}"#,
                    "config.json: inbounds[0].streamSettings.network: unknown key \"network\"")
        assertError(#"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"clients": [{"id": "\#(uuid)"}]}, "streamSettings": {"transport": "tcp"}}]}"#,
                    "config.json: inbounds[0].settings.clients: unknown key \"clients\"")
    }

    func testStreamVariants() throws {
        let upgrade = try parse(v4(inbound: vmessInbound("""
            "port": 1, "listen": null,
            "streamSettings": {"network": "httpupgrade", "httpupgradeSettings": {"path": "", "headers": {"host": "h.example"}}}
            """)))
        XCTAssertEqual(upgrade.inbounds[0].listen, "0.0.0.0")  // null is as if absent
        XCTAssertEqual(upgrade.inbounds[0].stream.httpUpgrade?.path, "/")
        XCTAssertEqual(upgrade.inbounds[0].stream.httpUpgrade?.host, "h.example")

        let ws = try parse(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"network": "websocket", "tcpSettings": null}
            """)))
        XCTAssertEqual(ws.inbounds[0].stream.ws, WebSocketSettings())

        assertError(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"network": "ws", "wsSettings": {"host": "a", "headers": {"Host": "b"}}}
            """)), "config.json: inbounds[0].streamSettings.wsSettings.host: host \"a\" contradicts the Host header \"b\"")
        assertError(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"tcpSettings": {"header": {"type": "srtp"}}}
            """)), "config.json: inbounds[0].streamSettings.tcpSettings.header.type: expected \"none\" or \"http\", got \"srtp\"")
        assertError(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"network": "ws", "wsSettings": {"useBrowserForwarding": true}}
            """)), "config.json: inbounds[0].streamSettings.wsSettings.useBrowserForwarding: \"useBrowserForwarding\": true is not supported by vmessd yet")

        let v5 = #"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\#(uuid)"]}, "streamSettings": %@}]}"#
        func v5Stream(_ stream: String) -> String { v5.replacingOccurrences(of: "%@", with: stream) }
        assertError(v5Stream(#"{"security": "none", "securitySettings": {}}"#),
                    "config.json: inbounds[0].streamSettings.securitySettings: \"securitySettings\" has no effect unless security is \"tls\"")
        assertError(v5Stream(#"{"transport": "quic"}"#),
                    "config.json: inbounds[0].streamSettings.transport: transport \"quic\" is not supported by vmessd yet")
        assertError(v5Stream(#"{"security": "tls", "securitySettings": {"certificate": [{"certificateFile": "/x", "certificate_file": "/y"}]}}"#),
                    "config.json: inbounds[0].streamSettings.securitySettings.certificate[0].certificate_file: \"certificate_file\" repeats another spelling of the same field")
        assertError(v5Stream(#"{"security": "tls", "securitySettings": {"certificate": [{"keyFile": "/k"}]}}"#),
                    "config.json: inbounds[0].streamSettings.securitySettings.certificate[0]: missing certificate: give \"certificateFile\" or \"Certificate\"")
    }

    func testTLSOptionsAndOutboundStrategy() throws {
        let (certificate, key) = try makeCertificate()
        let config = try parse(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"security": "TLS", "tlsSettings": {"alpn": "h2, http/1.1", "disableSystemRoot": true,
              "certificates": [{"certificateFile": "\(certificate)", "keyFile": "\(key)"}]}}
            """), extra: ""))
        XCTAssertEqual(config.inbounds[0].stream.tls?.alpn, ["h2", "http/1.1"])
        assertError(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"security": "tls", "tlsSettings": {"certificates": [
              {"certificateFile": "\(certificate)", "keyFile": "\(key)", "usage": "issue"}]}}
            """)), "config.json: inbounds[0].streamSettings.tlsSettings.certificates[0].usage: certificate usage \"issue\" is not supported by vmessd yet")

        let outbound = try parse(#"{"outbounds": [{"protocol": "Freedom", "domainStrategy": "UseIP"}]}"#)
        var freedom = FreedomSettings()
        freedom.domainStrategy = .useIP
        XCTAssertEqual(outbound.outbounds[0].settings, .freedom(freedom))
        assertError(#"{"outbounds": [{"protocol": "freedom", "domainStrategy": "UseIP4", "settings": {"domainStrategy": "UseIPv6"}}]}"#,
                    "config.json: outbounds[0].domainStrategy: domainStrategy contradicts settings.domainStrategy")
    }

    // MARK: hostile input

    func testDeepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        assertError(deep, "config.json:1:129: syntax error: nesting deeper than 128 levels")
        assertError("{\"log\": " + deep + "}", "config.json:1:136: syntax error: nesting deeper than 128 levels")
        // 128 levels are fine for the reader (the config layer then wants an object).
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        assertError(ok, "config.json: expected an object, got array")
    }

    func testWideObjectsStayLinear() throws {
        // 20 000 policy levels and as many headers: quadratic key handling would take tens of seconds here.
        let levels = (0..<20_000).map { "\"\($0)\": {}" }.joined(separator: ",")
        XCTAssertEqual(try parse(#"{"policy": {"levels": {\#(levels)}}}"#).policy.levels.count, 20_000)
        let headers = (0..<20_000).map { "\"X-\($0)\": \"v\"" }.joined(separator: ",")
        let config = try parse(v4(inbound: vmessInbound("""
            "port": 1, "streamSettings": {"network": "ws", "wsSettings": {"headers": {\(headers)}}}
            """)))
        XCTAssertEqual(config.inbounds[0].stream.ws?.headers.count, 20_000)
    }

    func testHugeNumbers() {
        assertError(v4(inbound: vmessInbound("\"port\": 99999999999999999999999999")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got 99999999999999999999999999")
        assertError(v4(inbound: vmessInbound("\"port\": 1e999999")),
                    "config.json: inbounds[0].port: expected an integer 1-65535, got 1e999999")
        assertError(#"{"vmessd": {"drainTimeout": 1e400}}"#, "config.json: vmessd.drainTimeout: expected a number >= 0, got 1e400")
        let long = String(repeating: "9", count: 50_000)
        assertError(#"{"vmessd": {"workers": \#(long)}}"#,
                    "config.json: vmessd.workers: expected an integer >= 1, got \(String(repeating: "9", count: 40))…")
    }

    func testInvalidUTF8AndEscapes() throws {
        let file = temporaryDirectory.appendingPathComponent("bad.json")
        try Data([0x7B, 0x0A, 0x20, 0x22, 0xFF, 0x22, 0x7D]).write(to: file)  // {\n "\xFF"}
        XCTAssertThrowsError(try ConfigParser.parse(fileAt: file.path)) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "\(file.path):2:3: syntax error: invalid UTF-8 byte 0xFF")
        }
        // Overlong encoding of '/' and a UTF-16 surrogate encoded in UTF-8 are not UTF-8 either.
        XCTAssertNotNil(JSONC.firstInvalidUTF8(in: [0xC0, 0xAF]))
        XCTAssertNotNil(JSONC.firstInvalidUTF8(in: [0xED, 0xA0, 0x80]))
        XCTAssertNotNil(JSONC.firstInvalidUTF8(in: [0xE4, 0xB8]))  // truncated
        XCTAssertNil(JSONC.firstInvalidUTF8(in: Array("中文 😀".utf8)))

        assertError(#"{"a": "\x"}"#, "config.json:1:8: syntax error: invalid escape character '\\x'")
        assertError(#"{"a": "\u12"}"#, "config.json:1:12: syntax error: invalid \\u escape: expected 4 hex digits")
        assertError(#"{"a": "\ud800"}"#, "config.json:1:8: syntax error: invalid \\u escape: lone surrogate")
        assertError(#"{"a": "\udc00x"}"#, "config.json:1:8: syntax error: invalid \\u escape: lone surrogate")
        assertError("{\"a\": \"tab\there\"}", "config.json:1:11: syntax error: control character U+0009 in a string (write it as an escape)")
        assertError("{\"a\": \"\\", "config.json:1:9: syntax error: unexpected end of input")
    }
}
