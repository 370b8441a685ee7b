// Harness self-check: the reference v2ray client against the reference v2ray server, through the same
// harness the vmessd tests use. If this fails, the harness (or the machine) is broken — not vmessd.

import Foundation
import TestSupport
import XCTest

final class HarnessSelfCheckTests: InteropTestCase {
    func testV2RayClientToV2RayServerAES128GCM() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        let client = try startClient(server: server, user: user, targetPort: echo.port)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(1024 * 1024),
                          label: "harness self-check (v2ray → v2ray, aes-128-gcm, 1 MiB)")
        assertRunning(server.process, client.process)
    }

    /// The binaries the other interop tests need are where the harness looks (or it says how to build them).
    func testVMessdBinariesArePresent() throws {
        let dir = try VMessdBinaries.directory()
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("vmessd-worker").path))
    }
}
