// The client side of the config: socks, http and dokodemo-door inbounds, the vmess outbound and
// `mux`, in both formats, with exact error messages.

import Foundation
import XCTest

@testable import Shared

final class ClientConfigTests: XCTestCase {
    let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    private func parse(_ text: String) throws -> Config {
        try ConfigParser.parse(text: text, sourceFile: "config.json")
    }

    private func assertError(_ text: String, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let config = try parse(text)
            XCTFail("expected an error, parsed \(config)", file: file, line: line)
        } catch let error as ConfigError {
            XCTAssertEqual(error.description, description, file: file, line: line)
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        }
    }

    private func inbound(_ json: String) -> String {
        #"{"inbounds": [\#(json)], "outbounds": [{"protocol": "freedom"}]}"#
    }

    private func outbound(_ json: String) -> String {
        #"{"outbounds": [\#(json)]}"#
    }

    func testSocksV4() throws {
        let config = try parse(inbound(#"""
            {"port": 1080, "listen": "127.0.0.1", "protocol": "socks",
             "settings": {"auth": "password", "accounts": [{"user": "a", "pass": "b"}], "udp": true, "ip": "127.0.0.1",
                          "userLevel": 1, "timeout": 10}}
            """#))
        var expected = SocksInboundSettings()
        expected.auth = .password
        expected.accounts = [ProxyAccount(user: "a", pass: "b")]
        expected.udp = true
        expected.udpAddress = "127.0.0.1"
        expected.userLevel = 1
        XCTAssertEqual(config.inbounds[0].settings, .socks(expected))
        XCTAssertEqual(try parse(inbound(#"{"port": 1080, "protocol": "socks"}"#)).inbounds[0].settings, .socks(SocksInboundSettings()))
    }

    func testSocksErrors() {
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"auth": "passwd"}}"#),
                    "config.json: inbounds[0].settings.auth: expected one of noauth, password, got \"passwd\"")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"auth": "password"}}"#),
                    "config.json: inbounds[0].settings.auth: auth \"password\" needs at least one entry in \"accounts\"")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"accounts": [{"user": "a", "pass": "b"}]}}"#),
                    "config.json: inbounds[0].settings.accounts: accounts have no effect unless \"auth\" is \"password\"")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"ip": "localhost"}}"#),
                    "config.json: inbounds[0].settings.ip: expected an IP address literal, got \"localhost\"")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"auth": "password", "accounts": [{"user": "a", "pass": "b"}, {"user": "a", "pass": "c"}]}}"#),
                    "config.json: inbounds[0].settings.accounts[1].user: duplicate user \"a\"")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"udpEnabled": true, "packetEncoding": 1}}"#),
                    "config.json: inbounds[0].settings.packetEncoding: packetEncoding \"Packet\" is not supported by vmessd yet (use \"None\")")
        assertError(inbound(#"{"port": 1, "protocol": "socks", "settings": {"packetEncoding": "Packet"}}"#),
                    "config.json: inbounds[0].settings.packetEncoding: packetEncoding \"Packet\" is not supported by vmessd yet")
    }

    func testHTTPAndDokodemoV4() throws {
        let config = try parse(#"""
            {"inbounds": [
               {"port": 8080, "protocol": "http", "settings": {"accounts": [{"user": "u", "pass": "p"}], "allowTransparent": false}},
               {"port": 5353, "protocol": "dokodemo-door", "settings": {"address": "8.8.8.8", "port": 53, "network": "tcp,udp"}},
               {"port": 8000, "protocol": "dokodemo-door", "settings": {"address": "example.com", "port": 80}}],
             "outbounds": [{"protocol": "freedom"}]}
            """#)
        var http = HTTPInboundSettings()
        http.accounts = [ProxyAccount(user: "u", pass: "p")]
        XCTAssertEqual(config.inbounds[0].settings, .http(http))
        var dns = DokodemoSettings(address: "8.8.8.8", port: 53)
        dns.udp = true
        XCTAssertEqual(config.inbounds[1].settings, .dokodemo(dns))
        XCTAssertEqual(config.inbounds[2].settings, .dokodemo(DokodemoSettings(address: "example.com", port: 80)))
        assertError(inbound(#"{"port": 1, "protocol": "http", "settings": {"allowTransparent": true}}"#),
                    "config.json: inbounds[0].settings.allowTransparent: \"allowTransparent\": true is not supported by vmessd yet")
        assertError(inbound(#"{"port": 1, "protocol": "dokodemo-door", "settings": {"port": 53}}"#),
                    "config.json: inbounds[0].settings: missing required key \"address\"")
        assertError(inbound(#"{"port": 1, "protocol": "dokodemo-door", "settings": {"address": "a b", "port": 53}}"#),
                    "config.json: inbounds[0].settings.address: expected an IP address or a domain name, got \"a b\"")
        assertError(inbound(#"{"port": 1, "protocol": "dokodemo-door", "settings": {"address": "a", "port": 53, "network": "sctp"}}"#),
                    "config.json: inbounds[0].settings.network: expected \"tcp\", \"udp\" or \"tcp,udp\", got \"sctp\"")
        assertError(inbound(#"{"port": 1, "protocol": "dokodemo-door", "settings": {"followRedirect": true}}"#),
                    "config.json: inbounds[0].settings.followRedirect: \"followRedirect\": true is not supported by vmessd yet")
    }

    func testVMessOutboundV4() throws {
        let config = try parse(outbound(#"""
            {"protocol": "vmess", "tag": "proxy",
             "settings": {"vnext": [
                {"address": "a.example", "port": 443, "users": [{"id": "\#(uuid)", "alterId": 0, "security": "aes-128-gcm"},
                                                               {"id": "\#(uuid.uppercased())", "alterId": 4, "security": "zero", "level": 1}]},
                {"address": "2001:db8::1", "port": 8443, "users": [{"id": "\#(uuid)"}]}]},
             "mux": {"enabled": true, "concurrency": 16}}
            """#))
        guard case .vmess(let vmess) = config.outbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(vmess.servers.count, 2)
        XCTAssertEqual(vmess.servers[0].address, "a.example")
        XCTAssertEqual(vmess.servers[0].users, [VMessUser(id: uuid, security: "aes-128-gcm"),
                                                VMessUser(id: uuid, alterId: 4, security: "zero", level: 1)])
        XCTAssertEqual(vmess.servers[1].address, "2001:db8::1")
        XCTAssertEqual(vmess.mux, MuxSettings(concurrency: 16))
        XCTAssertEqual(vmess.stream, StreamSettings())

        guard case .vmess(let defaults) = try parse(outbound(#"""
            {"protocol": "vmess", "settings": {"vnext": [{"address": "1.2.3.4", "port": 1, "users": [{"id": "\#(uuid)"}]}]},
             "mux": {"enabled": true}}
            """#)).outbounds[0].settings else { return XCTFail() }
        XCTAssertEqual(defaults.mux, MuxSettings(concurrency: 8))
    }

    func testVMessOutboundV5AndSimplifiedShape() throws {
        // The simplified form is recognised by its shape even where format detection says v4.
        let config = try parse(outbound(#"{"protocol": "vmess", "settings": {"address": "127.0.0.1", "port": 10086, "uuid": "\#(uuid)"}}"#))
        XCTAssertEqual(config.outbounds[0].settings, .vmess(VMessOutboundSettings(servers: [
            .init(address: "127.0.0.1", port: 10086, users: [VMessUser(id: uuid, security: "auto")]),
        ])))
        let v5 = try parse(#"""
            {"log": {"error": {"level": "Info"}},
             "inbounds": [{"protocol": "socks", "port": 1080, "listen": "127.0.0.1", "settings": {"udpEnabled": true, "address": "127.0.0.1"}},
                          {"protocol": "http", "port": 8080, "settings": {}},
                          {"protocol": "dokodemo-door", "port": 53, "settings": {"address": "1.1.1.1", "port": 53, "networks": ["udp"]}}],
             "outbounds": [{"protocol": "vmess", "settings": {"address": "example.com", "port": 443, "uuid": "\#(uuid)"}}]}
            """#)
        XCTAssertEqual(v5.format, .v5)
        var socks = SocksInboundSettings()
        socks.udp = true
        socks.udpAddress = "127.0.0.1"
        XCTAssertEqual(v5.inbounds[0].settings, .socks(socks))
        XCTAssertEqual(v5.inbounds[1].settings, .http(HTTPInboundSettings()))
        var dns = DokodemoSettings(address: "1.1.1.1", port: 53)
        dns.tcp = false
        dns.udp = true
        XCTAssertEqual(v5.inbounds[2].settings, .dokodemo(dns))
    }

    /// Xray's flat vmess outbound: one server and one user in `settings` itself.
    func testXrayFlatVMessOutbound() throws {
        let config = try parse(outbound(#"""
            {"protocol": "vmess", "settings": {"address": "vpn.example", "port": 443, "id": "\#(uuid.uppercased())",
                                               "security": "chacha20-poly1305", "level": 1, "email": "me@example"}}
            """#))
        XCTAssertEqual(config.outbounds[0].settings, .vmess(VMessOutboundSettings(servers: [
            .init(address: "vpn.example", port: 443,
                  users: [VMessUser(id: uuid, security: "chacha20-poly1305", level: 1, email: "me@example")]),
        ])))
        assertError(outbound(#"{"protocol": "vmess", "settings": {"address": "a", "port": 1, "id": "\#(uuid)", "experiments": "AuthenticatedLength"}}"#),
                    "config.json: outbounds[0].settings.experiments: Xray's \"experiments\" is not supported by vmessd")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"address": "a", "port": 1}}"#),
                    "config.json: outbounds[0].settings: missing required key \"id\"")
    }

    /// A client config whose only v5 traits are client-side settings is detected as v4; those
    /// settings are still read in their v5 shape.
    func testV5ClientSettingsInAConfigDetectedAsV4() throws {
        let config = try parse(#"""
            {"inbounds": [{"protocol": "socks", "port": 1080, "settings": {"udpEnabled": true, "packetEncoding": "None"}},
                          {"protocol": "dokodemo-door", "port": 53, "settings": {"address": "1.1.1.1", "port": 53, "networks": "tcp,udp"}}],
             "outbounds": [{"protocol": "vmess", "settings": {"address": "example.com", "port": 443, "uuid": "\#(uuid)"}}]}
            """#)
        XCTAssertEqual(config.format, .v4)
        var socks = SocksInboundSettings()
        socks.udp = true
        XCTAssertEqual(config.inbounds[0].settings, .socks(socks))
        var dns = DokodemoSettings(address: "1.1.1.1", port: 53)
        dns.udp = true
        XCTAssertEqual(config.inbounds[1].settings, .dokodemo(dns))
        guard case .vmess(let vmess) = config.outbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(vmess.servers.first?.address, "example.com")
    }

    func testVMessOutboundErrors() {
        assertError(outbound(#"{"protocol": "vmess"}"#), "config.json: outbounds[0]: missing required key \"settings\"")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"vnext": []}}"#),
                    "config.json: outbounds[0].settings.vnext: a vmess outbound needs at least one server")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": []}]}}"#),
                    "config.json: outbounds[0].settings.vnext[0].users: a vmess server needs at least one user")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "x"}]}]}}"#),
                    "config.json: outbounds[0].settings.vnext[0].users[0].id: invalid UUID \"x\"")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "\#(uuid)", "security": "aes-256-cfb"}]}]}}"#),
                    "config.json: outbounds[0].settings.vnext[0].users[0].security: expected one of aes-128-gcm, chacha20-poly1305, auto, none, zero, got \"aes-256-cfb\"")
        assertError(outbound(#"{"protocol": "vmess", "settings": {"address": "a", "port": 1, "uuid": "\#(uuid)"}, "mux": {"enabled": true, "concurrency": 2000}}"#),
                    "config.json: outbounds[0].mux.concurrency: expected an integer -1-1024, got 2000")
        assertError(outbound(#"{"protocol": "freedom", "mux": {"enabled": true}}"#),
                    "config.json: outbounds[0].mux.enabled: \"mux\" is not supported by vmessd yet (set \"enabled\" to false)")
    }

    func testCodableRoundTrip() throws {
        let config = try parse(#"""
            {"inbounds": [{"port": 1080, "protocol": "socks", "settings": {"udp": true}}],
             "outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "a.b", "port": 1, "users": [{"id": "\#(uuid)"}]}]},
                            "mux": {"enabled": true, "concurrency": 4}}]}
            """#)
        let data = try JSONEncoder().encode(config)
        XCTAssertEqual(try JSONDecoder().decode(Config.self, from: data), config)
    }
}
