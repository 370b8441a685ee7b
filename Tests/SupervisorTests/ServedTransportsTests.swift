// `run` refuses transports this release does not serve, with a message that says what to use instead.

import Shared
import XCTest
@testable import Supervisor

final class ServedTransportsTests: XCTestCase {
    func testOnlyPlainTCPIsServed() {
        var ws = StreamSettings()
        ws.network = .ws
        ws.security = .tls
        var tls = StreamSettings()
        tls.security = .tls
        let user = VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        let config = Config(sourceFile: "t.json", format: .v4, inbounds: [
            InboundConfig(port: 1, settings: .vmess(.init(users: [user])), jsonPath: "inbounds[0]"),
            InboundConfig(port: 2, settings: .vmess(.init(users: [user])), stream: ws, jsonPath: "inbounds[1]"),
            InboundConfig(port: 3, settings: .vmess(.init(users: [user])), stream: tls, jsonPath: "inbounds[2]"),
        ], outbounds: [])
        XCTAssertEqual(unservedTransportProblems(config), [
            "inbounds[1]: transport \"ws\" with security \"tls\" is not served yet (next release); use network tcp with security none",
            "inbounds[2]: transport \"tcp\" with security \"tls\" is not served yet (next release); use network tcp with security none",
        ])
    }
}
