import XCTest
@testable import Shared

/// Config additions for the transports: httpupgrade early data, CA certificates (usage "verify"),
/// and outbound stream settings that need no certificate.
final class TransportConfigTests: XCTestCase {
    static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    static let key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"

    func inboundV4(_ stream: String) -> String {
        """
        {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"clients": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]},
          "streamSettings": \(stream)}], "outbounds": [{"protocol": "freedom"}]}
        """
    }

    func inboundV5(_ stream: String) -> String {
        """
        {"inbounds": [{"port": 1, "protocol": "vmess", "settings": {"users": ["6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"]},
          "streamSettings": \(stream)}], "outbounds": [{"protocol": "freedom"}]}
        """
    }

    func parse(_ text: String) throws -> Config { try ConfigParser.parse(text: text, sourceFile: "config.json") }

    func testHTTPUpgradeEarlyDataV4AndV5() throws {
        let v4 = try parse(inboundV4("""
            {"network": "httpupgrade", "httpupgradeSettings": {"path": "/u", "maxEarlyData": 2048,
             "earlyDataHeaderName": "Sec-WebSocket-Protocol"}}
            """)).inbounds[0].stream.httpUpgrade
        XCTAssertEqual(v4?.maxEarlyData, 2048)
        XCTAssertEqual(v4?.earlyDataHeaderName, "Sec-WebSocket-Protocol")
        let v5 = try parse(inboundV5("""
            {"transport": "httpupgrade", "transportSettings": {"path": "/u", "maxEarlyData": 1024}}
            """)).inbounds[0].stream.httpUpgrade
        XCTAssertEqual(v5?.maxEarlyData, 1024)
        XCTAssertNil(v5?.earlyDataHeaderName)
        XCTAssertThrowsError(try parse(inboundV5("""
            {"transport": "httpupgrade", "transportSettings": {"maxEarlyData": 1, "earlyDataHeaderName": "a b"}}
            """))) { XCTAssertTrue("\($0)".contains("invalid HTTP header name"), "\($0)") }
    }

    func testVerifyCertificatesGoToAuthorities() throws {
        let tls = try parse(inboundV4("""
            {"network": "ws", "security": "tls", "tlsSettings": {"certificates": [
              {"certificate": ["-----BEGIN CERTIFICATE-----", "MIIB", "-----END CERTIFICATE-----"],
               "key": ["-----BEGIN PRIVATE KEY-----", "MIIB", "-----END PRIVATE KEY-----"]},
              {"usage": "verify", "certificate": ["-----BEGIN CERTIFICATE-----", "MIIC", "-----END CERTIFICATE-----"]}]}}
            """)).inbounds[0].stream.tls
        XCTAssertEqual(tls?.certificates.count, 1)
        XCTAssertEqual(tls?.authorityCertificates, ["-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"])
        // v5 enum name.
        let v5 = try parse(inboundV5("""
            {"transport": "tcp", "security": "tls", "securitySettings": {"certificate": [
              {"Certificate": \(json(Self.pem)), "Key": \(json(Self.key))},
              {"usage": "AUTHORITY_VERIFY", "Certificate": \(json(Self.pem))}]}}
            """)).inbounds[0].stream.tls
        XCTAssertEqual(v5?.authorityCertificates.count, 1)
        // A served certificate still needs its key; a CA entry must not have one.
        XCTAssertThrowsError(try parse(inboundV4("""
            {"network": "tcp", "security": "tls", "tlsSettings": {"certificates": [
              {"usage": "verify", "certificate": ["-----BEGIN CERTIFICATE-----"], "key": ["-----BEGIN PRIVATE KEY-----"]}]}}
            """)))
    }

    func testInboundTLSStillNeedsAServedCertificate() {
        XCTAssertThrowsError(try parse(inboundV4("""
            {"network": "tcp", "security": "tls", "tlsSettings": {"certificates": [
              {"usage": "verify", "certificate": ["-----BEGIN CERTIFICATE-----"]}]}}
            """))) { XCTAssertTrue("\($0)".contains("needs at least one certificate"), "\($0)") }
    }

    func json(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
