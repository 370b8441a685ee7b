// mKCP inbound under reloads, with the real v2ray client: sessions opened before a reload keep
// flowing on the old generation's workers (each session has its own connected UDP socket, so its
// datagrams reach the worker that holds it), new sessions after READY=1 are served by the new
// generation, and the old workers exit once their sessions end.

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class KCPReloadTests: EndToEndTestCase {
    override class var testTimeout: TimeInterval { 180 }

    static let kcp: [String: Any] = [
        "network": "kcp",
        "kcpSettings": ["tti": 20, "uplinkCapacity": 20, "downlinkCapacity": 50, "header": ["type": "wechat-video"], "seed": "reload"],
    ]

    func testReloadsKeepSessionsOnTheirWorkers() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("kcp@example.com")
        let port = try FreePort.udp()
        let config = Self.serverConfig(port: port, users: [user], extra: [:])
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any])
        var inbounds = try XCTUnwrap(object["inbounds"] as? [[String: Any]])
        inbounds[0]["streamSettings"] = Self.kcp
        object["inbounds"] = inbounds
        let server = try startVMessd(config: Self.json(object), port: port, workers: 2, drainTimeout: 60)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port, stream: Self.kcp)
        let firstWorkers = try status(server).workers.map(\.pid)

        // Long-lived sessions (one per v2ray connection, each from its own UDP port, so spread over
        // both workers by the kernel's hash).
        let streams = try (0..<4).map { try LongStream(port: client.port, label: "kcp stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }

        for reload in 1...2 {
            let readyBefore = server.notify.count("READY=1")
            XCTAssertEqual(kill(server.pid, SIGHUP), 0)
            XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: readyBefore + 1, timeout: 30),
                          "reload \(reload): no READY=1 (\(server.notify.messages))")
            // New sessions are served right after READY=1.
            for i in 0..<3 {
                try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after reload \(reload) #\(i)")
            }
            // The old sessions go on, undisturbed.
            for stream in streams { XCTAssertTrue(stream.waitForRounds(5, timeout: 20), "\(stream.label) after reload \(reload): \(stream.state)") }
        }
        XCTAssertTrue(firstWorkers.contains { EndToEndTestCase.exists($0) }, "generation 1 must live while its sessions do")
        for stream in streams {
            let end = stream.stop()
            XCTAssertNil(end.failure, "\(stream.label) after \(end.rounds) rounds")
        }
        // With their sessions closed, the old workers exit.
        try eventually("old workers exited after draining", timeout: 40) {
            let s = try status(server)
            return s.workers.count == 2 && s.workers.allSatisfy { $0.generation == 3 }
        }
    }
}
