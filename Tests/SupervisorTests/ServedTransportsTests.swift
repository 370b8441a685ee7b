// `run` refuses transports the worker does not serve. Since the transports landed (tcp, ws and
// httpupgrade, each with or without TLS) nothing is refused any more.

import Shared
import XCTest
@testable import Supervisor

final class ServedTransportsTests: XCTestCase {
    func testEveryParsedTransportIsServed() {
        var ws = StreamSettings()
        ws.network = .ws
        ws.security = .tls
        var tls = StreamSettings()
        tls.security = .tls
        var upgrade = StreamSettings()
        upgrade.network = .httpupgrade
        let user = VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        let config = Config(sourceFile: "t.json", format: .v4, inbounds: [
            InboundConfig(port: 1, settings: .vmess(.init(users: [user])), jsonPath: "inbounds[0]"),
            InboundConfig(port: 2, settings: .vmess(.init(users: [user])), stream: ws, jsonPath: "inbounds[1]"),
            InboundConfig(port: 3, settings: .vmess(.init(users: [user])), stream: tls, jsonPath: "inbounds[2]"),
            InboundConfig(port: 4, settings: .vmess(.init(users: [user])), stream: upgrade, jsonPath: "inbounds[3]"),
        ], outbounds: [])
        XCTAssertEqual(unservedTransportProblems(config), [])
    }
}
