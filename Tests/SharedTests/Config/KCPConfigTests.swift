import XCTest
@testable import Shared

/// `kcpSettings` (v4) and kcp `transportSettings` (v5): V2Ray's defaults, units and ranges, and the
/// errors for what does not apply.
final class KCPConfigTests: XCTestCase {
    func config(_ stream: String, v5: Bool = false) -> String {
        let settings = v5 ? #"{"users": ["6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"]}"#
            : #"{"clients": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]}"#
        return """
            {"inbounds": [{"port": 1, "protocol": "vmess", "settings": \(settings), "streamSettings": \(stream)}],
             "outbounds": [{"protocol": "freedom"}]}
            """
    }

    func parse(_ text: String) throws -> Config { try ConfigParser.parse(text: text, sourceFile: "config.json") }

    func testV4Defaults() throws {
        for network in ["kcp", "mkcp", "KCP"] {
            let stream = try parse(config(#"{"network": "\#(network)"}"#)).inbounds[0].stream
            XCTAssertEqual(stream.network, .kcp)
            XCTAssertEqual(stream.kcp, KCPSettings())
        }
    }

    func testV4AllKeys() throws {
        let kcp = try XCTUnwrap(parse(config("""
            {"network": "kcp", "kcpSettings": {"mtu": 1200, "tti": 20, "uplinkCapacity": 12, "downlinkCapacity": 100,
             "congestion": true, "readBufferSize": 4, "writeBufferSize": 0, "header": {"type": "wechat-video"}, "seed": "s3cret"}}
            """)).inbounds[0].stream.kcp)
        XCTAssertEqual([kcp.mtu, kcp.tti, kcp.uplinkCapacity, kcp.downlinkCapacity], [1200, 20, 12, 100])
        XCTAssertTrue(kcp.congestion)
        XCTAssertEqual(kcp.readBufferSize, 4 * 1024 * 1024)
        XCTAssertEqual(kcp.writeBufferSize, 512 * 1024, "0 MiB means 512 KiB, as in V2Ray")
        XCTAssertEqual(kcp.header, .wechatVideo)
        XCTAssertEqual(kcp.seed, "s3cret")
        for type in KCPSettings.HeaderType.allCases {
            let parsed = try parse(config(#"{"network": "kcp", "kcpSettings": {"header": {"type": "\#(type.rawValue)"}}}"#))
            XCTAssertEqual(parsed.inbounds[0].stream.kcp?.header, type)
        }
    }

    func testV5Message() throws {
        let kcp = try XCTUnwrap(parse(config("""
            {"transport": "kcp", "transportSettings": {"mtu": {"value": 1400}, "tti": {"value": 30},
             "uplink_capacity": {"value": 7}, "downlinkCapacity": {"value": 9}, "congestion": true,
             "read_buffer": {"size": 1048576}, "writeBuffer": {"size": 65536},
             "header_config": {"@type": "types.v2fly.org/v2ray.core.transport.internet.headers.tls.PacketConfig"},
             "seed": {"seed": "x"}}}
            """, v5: true)).inbounds[0].stream.kcp)
        XCTAssertEqual([kcp.mtu, kcp.tti, kcp.uplinkCapacity, kcp.downlinkCapacity], [1400, 30, 7, 9])
        XCTAssertEqual([kcp.readBufferSize, kcp.writeBufferSize], [1_048_576, 65536])
        XCTAssertEqual(kcp.header, .dtls)
        XCTAssertEqual(kcp.seed, "x")
        XCTAssertEqual(try parse(config(#"{"transport": "kcp"}"#, v5: true)).inbounds[0].stream.kcp, KCPSettings())
    }

    func testErrorsNameTheKey() throws {
        let bad: [(String, Bool, String)] = [
            (#"{"network": "kcp", "kcpSettings": {"mtu": 1500}}"#, false, "mtu"),
            (#"{"network": "kcp", "kcpSettings": {"tti": 5}}"#, false, "tti"),
            (#"{"network": "kcp", "kcpSettings": {"uplinkCapacity": 100000}}"#, false, "uplinkCapacity"),
            (#"{"network": "kcp", "kcpSettings": {"header": {"type": "http"}}}"#, false, "type"),
            (#"{"network": "kcp", "kcpSettings": {"mystery": 1}}"#, false, "mystery"),
            (#"{"network": "tcp", "kcpSettings": {}}"#, false, "kcpSettings"),
            (#"{"network": "kcp", "sockopt": {"acceptProxyProtocol": true}}"#, false, "acceptProxyProtocol"),
            (#"{"transport": "kcp", "transportSettings": {"mtu": {"value": 0}}}"#, true, "mtu"),
            (#"{"transport": "kcp", "transportSettings": {"header_config": {"@type": "v2ray.core.transport.internet.headers.http.Config"}}}"#, true, "@type"),
        ]
        for (stream, v5, key) in bad {
            XCTAssertThrowsError(try parse(config(stream, v5: v5)), stream) { error in
                XCTAssertTrue("\(error)".contains(key), "\(stream): \(error)")
            }
        }
    }
}
