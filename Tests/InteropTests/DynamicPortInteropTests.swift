// Dynamic port (issue 8), vmessd as the client: the real V2Ray 4.34 server's main inbound detours to
// a port-range inbound; its switch-account command reaches vmessd's vmess outbound, whose next
// connections go to the detour ports with the id V2Ray made for the user. The server routes by
// inbound tag to two echo targets, which shows where each connection came in. (vmessd as the server,
// with the v2ray client, is DynamicPortTests in EndToEndTests.)

import Foundation
import TestSupport
import XCTest

final class DynamicPortInteropTests: InteropTestCase {
    func testVMessdFollowsTheV2RayServersSwitchAccountCommand() throws {
        let main = try makeEchoServer()
        let detoured = try makeEchoServer()
        let user = VMessTestUser(security: "aes-128-gcm")
        let port = try FreePort.tcp()
        let range = try FreePort.tcpRange(2)
        var sections = DynamicPortConfig.sections(mainPort: port, detourPorts: range, client: user.json,
                                                  mainTarget: main.port, detourTarget: detoured.port)
        sections["log"] = ["loglevel": "debug"]
        let serverConfig = TestConfigs.json(sections)
        let server = try launch("server-v2ray", v2rayPath, ["-config", try writeFile("server-v2ray.json", serverConfig)])
        try waitUntilListening(server, port: port)
        let client = try startVMessdClient(VMessdClientSetup(serverPort: port, user: user))
        for i in 0..<6 {
            let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: 9)
            try echoRoundTrip(fd: fd, payload: randomData(16 * 1024), label: "connection \(i)")
        }
        // Each worker learns the switch from its own first connection (2 workers here), then stays on
        // the detour ports.
        XCTAssertGreaterThanOrEqual(main.connectionCount, 1)
        XCTAssertLessThanOrEqual(main.connectionCount, 2, "after its first connection a worker must use the detour ports")
        XCTAssertEqual(main.connectionCount + detoured.connectionCount, 6)
        assertRunning(server, client.process)
    }
}
