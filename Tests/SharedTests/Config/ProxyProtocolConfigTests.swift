import XCTest
@testable import Shared

/// `acceptProxyProtocol` in every place V2Ray and Xray read it: v4 tcpSettings (and Xray's
/// rawSettings), wsSettings, httpupgradeSettings, sockopt; v5 tcp and websocket transportSettings
/// and socketSettings. Any one of them turns it on; outbounds refuse it.
final class ProxyProtocolConfigTests: XCTestCase {
    let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func inboundStream(_ text: String) throws -> StreamSettings {
        try ConfigParser.parse(text: text, sourceFile: "config.json").inbounds[0].stream
    }

    func v4(_ stream: String) -> String {
        #"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"clients": [{"id": "\#(uuid)"}]}, "streamSettings": \#(stream)}], "outbounds": [{"protocol": "freedom"}]}"#
    }

    func v5(_ stream: String) -> String {
        #"{"inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["\#(uuid)"]}, "streamSettings": \#(stream)}]}"#
    }

    func testV4Places() throws {
        XCTAssertFalse(try inboundStream(v4("{}")).acceptProxyProtocol)
        for stream in [
            #"{"tcpSettings": {"acceptProxyProtocol": true}}"#,
            #"{"network": "raw", "rawSettings": {"acceptProxyProtocol": true}}"#,
            #"{"tcpSettings": {"acceptProxyProtocol": true, "header": {"type": "none"}}}"#,
            #"{"network": "ws", "wsSettings": {"path": "/p", "acceptProxyProtocol": true}}"#,
            #"{"network": "httpupgrade", "httpupgradeSettings": {"acceptProxyProtocol": true}}"#,
            #"{"sockopt": {"acceptProxyProtocol": true}}"#,
            #"{"network": "ws", "sockopt": {"acceptProxyProtocol": true, "mark": 0}}"#,
            // false in one place does not undo true in another
            #"{"tcpSettings": {"acceptProxyProtocol": false}, "sockopt": {"acceptProxyProtocol": true}}"#,
        ] {
            XCTAssertTrue(try inboundStream(v4(stream)).acceptProxyProtocol, stream)
        }
        XCTAssertFalse(try inboundStream(v4(#"{"tcpSettings": {"acceptProxyProtocol": false}}"#)).acceptProxyProtocol)
        // sockopt's flag is not a socket option.
        XCTAssertTrue(try inboundStream(v4(#"{"sockopt": {"acceptProxyProtocol": true}}"#)).sockopt.isEmpty)
    }

    func testV5Places() throws {
        for stream in [
            #"{"transport": "tcp", "transportSettings": {"acceptProxyProtocol": true}}"#,
            #"{"transport": "tcp", "transportSettings": {"accept_proxy_protocol": true}}"#,
            #"{"transport": "websocket", "transportSettings": {"acceptProxyProtocol": true}}"#,
            #"{"socketSettings": {"acceptProxyProtocol": true}}"#,
            #"{"socketSettings": {"accept_proxy_protocol": true}}"#,
        ] {
            XCTAssertTrue(try inboundStream(v5(stream)).acceptProxyProtocol, stream)
        }
        XCTAssertFalse(try inboundStream(v5(#"{"socketSettings": {"acceptProxyProtocol": false}}"#)).acceptProxyProtocol)
    }

    func testErrors() {
        let error = configErrorText
        XCTAssertEqual(error(v4(#"{"tcpSettings": {"acceptProxyProtocol": "yes"}}"#)),
                       "config.json: inbounds[0].streamSettings.tcpSettings.acceptProxyProtocol: expected true or false, got \"yes\"")
        XCTAssertEqual(error(#"{"outbounds": [{"protocol": "freedom", "streamSettings": {"sockopt": {"acceptProxyProtocol": true}}}]}"#),
                       "config.json: outbounds[0].streamSettings.sockopt: \"acceptProxyProtocol\" applies to inbounds only")
        XCTAssertEqual(error(#"{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "127.0.0.1", "port": 1, "users": [{"id": "\#(uuid)"}]}]}, "streamSettings": {"tcpSettings": {"acceptProxyProtocol": true}}}]}"#),
                       "config.json: outbounds[0].streamSettings: \"acceptProxyProtocol\" applies to inbounds only")
    }
}
