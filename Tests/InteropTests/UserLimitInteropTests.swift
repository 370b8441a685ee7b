// Per-user limits (vmessd.userLimits) against real v2ray 4.34 clients, vmessd with two workers:
//
//   v2ray client(s) ──VMess──▶ vmessd (2 workers, limits in shared memory) ──freedom──▶ echo
//
// - connections: a user's fourth connection at once is refused like an unknown id (no byte comes
//   back), counted as limit_connections; once one of the three ends, a new one is carried again;
// - source addresses: with sourceIPs 1 a second client address is refused while the first holds a
//   connection (a second connection from the first address is fine), and carried once the first
//   address's connections have ended and its place lapsed;
// - rates: an echo of 4 MiB through a user limited to 1 MiB/s one way takes at least the time the
//   limit allows (a lower bound only: a slow machine only makes it slower), bytes identical; also
//   when the client half-closes (vmessd's own client, body security zero), so that what NIO reads
//   unasked at the FIN is paced too.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class UserLimitInteropTests: InteropTestCase {
    /// A user named by email, for the server's clients list (limits are by email).
    struct User {
        var vmess = VMessTestUser(security: "aes-128-gcm")
        let email: String
        var serverJSON: [String: Any] { vmess.json.merging(["email": email]) { $1 } }
    }

    private func startServer(users: [User], limits: [String: Any]) throws -> (RunningServer, control: String) {
        let port = try FreePort.tcp()
        let config = TestConfigs.json([
            "log": ["loglevel": "debug"],
            "vmessd": ["userLimits": limits],
            // A refused connection is held like an unknown id until the handshake timeout.
            "policy": ["levels": ["0": ["handshake": 2]]],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in",
                "settings": ["clients": users.map(\.serverJSON)],
            ]],
            "outbounds": [["protocol": "freedom", "settings": [String: Any]()]],
        ])
        let server = try startVMessd(config: config, port: port, name: "server-vmessd-limits")
        return (server, workDir.appendingPathComponent("server-vmessd-limits.ctl").path)
    }

    /// The v2ray client for `user`, its VMess connections leaving from `source` (`sendThrough`).
    private func startClient(_ user: User, serverPort: UInt16, target: UInt16, source: String = "127.0.0.1",
                             name: String) throws -> RunningClient {
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let base = TestConfigs.v2rayClient(dokodemoPort: dokodemo, targetPort: target, socksPort: socks,
                                           serverPort: serverPort, user: user.vmess)
        var object = try JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
        var outbounds = object["outbounds"] as! [[String: Any]]
        outbounds[0]["sendThrough"] = source
        object["outbounds"] = outbounds
        let process = try launch(name, v2rayPath, ["-config", try writeFile("\(name).json", TestConfigs.json(object))])
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: dokodemo, socksPort: socks, process: process)
    }

    /// A connection through `client` that has carried one echo and stays open.
    private func openConnection(_ client: RunningClient, label: String) throws -> Int32 {
        let fd = try Sock.connect(port: client.dokodemoPort)
        do {
            try echoOnce(fd, label: label, timeout: 10)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// A connection whose echo never comes: the server refused it (the client sees EOF or nothing).
    private func assertRefused(_ client: RunningClient, label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fd = try Sock.connect(port: client.dokodemoPort)
        defer { close(fd) }
        XCTAssertThrowsError(try echoOnce(fd, label: label, timeout: 4), "\(label): refused", file: file, line: line)
    }

    /// Retries for a few seconds: a close reaches the server a moment after the client's socket closes.
    private func eventuallyOpens(_ client: RunningClient, label: String, within seconds: TimeInterval) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do { return try openConnection(client, label: label) } catch {
                if Date() > deadline { throw error }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }

    private func stats(_ control: String) throws -> [String: Any] {
        let out = try runTool(try VMessdBinaries.vmessd(), ["ctl", "--control", control, "--json", "stats"]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return (object?["stats"] as? [String: Any]) ?? object ?? [:]
    }

    private func rejected(_ control: String, _ reason: String) throws -> Int {
        ((try stats(control)["rejected"] as? [String: Any])?[reason] as? Int) ?? 0
    }

    /// `ctl stats`' row of `user`: open connections and addresses.
    private func userRow(_ control: String, _ user: String) throws -> (open: Int?, addresses: [String]?) {
        let rows = try stats(control)["users"] as? [[String: Any]] ?? []
        let row = rows.first { $0["user"] as? String == user }
        return (row?["open"] as? Int, row?["addresses"] as? [String])
    }

    func testConnectionLimitAcrossWorkers() throws {
        let alice = User(email: "alice@example.com"), bob = User(email: "bob@example.com")
        let echo = try makeEchoServer()
        let (server, control) = try startServer(users: [alice, bob], limits: ["users": ["alice@example.com": ["connections": 3]]])
        let client = try startClient(alice, serverPort: server.port, target: echo.port, name: "client-alice")
        var open = try (0..<3).map { try openConnection(client, label: "alice \($0)") }
        defer { open.forEach { close($0) } }
        try assertRefused(client, label: "alice's fourth")
        XCTAssertEqual(try userRow(control, alice.email).open, 3, "ctl stats shows the open connections")
        // Bob has no limit and is not affected by Alice's.
        let bobClient = try startClient(bob, serverPort: server.port, target: echo.port, name: "client-bob")
        let bobs = try (0..<4).map { try openConnection(bobClient, label: "bob \($0)") }
        bobs.forEach { close($0) }
        // One of Alice's ends: a new one is carried, byte for byte.
        close(open.removeFirst())
        let again = try eventuallyOpens(client, label: "alice after a close", within: 5)
        open.append(again)
        try echoRoundTrip(fd: try eventuallyOpens(bobClient, label: "bob bulk", within: 1), payload: randomData(256 * 1024), label: "bob bulk")
        // Refusals reach `ctl stats` with the workers' next publish (once a second).
        try eventually("a limit_connections refusal in ctl stats") { try rejected(control, "limit_connections") >= 1 }
        assertRunning(server.process, client.process, bobClient.process)
    }

    func testSourceAddressLimit() throws {
        let alice = User(email: "alice@example.com")
        let echo = try makeEchoServer()
        let (server, control) = try startServer(users: [alice], limits: ["levels": ["0": ["sourceIPs": 1]]])
        let phone = try startClient(alice, serverPort: server.port, target: echo.port, source: "127.0.0.2", name: "client-phone")
        let laptop = try startClient(alice, serverPort: server.port, target: echo.port, source: "127.0.0.3", name: "client-laptop")
        let first = try openConnection(phone, label: "phone")
        let second = try openConnection(phone, label: "phone, second connection")
        try assertRefused(laptop, label: "laptop while the phone is connected")
        let row = try userRow(control, alice.email)
        XCTAssertEqual(row.open, 2)
        XCTAssertEqual(row.addresses, ["127.0.0.2"])
        close(first)
        close(second)
        // The phone's place lapses a few seconds after its last connection (UserLimitTable.sourceLease).
        let fd = try eventuallyOpens(laptop, label: "laptop after the phone left", within: 10)
        try echoRoundTrip(fd: fd, payload: randomData(128 * 1024), label: "laptop bulk")
        // Refusals reach `ctl stats` with the workers' next publish (once a second).
        try eventually("a limit_source_ips refusal in ctl stats") { try rejected(control, "limit_source_ips") >= 1 }
        assertRunning(server.process, phone.process, laptop.process)
    }

    func testRatesHoldBothDirections() throws {
        let down = User(email: "down@example.com"), up = User(email: "up@example.com")
        let echo = try makeEchoServer()
        let rate = 1024 * 1024
        let (server, _) = try startServer(users: [down, up], limits: ["users": [
            "down@example.com": ["downlinkRate": rate, "burst": 256 * 1024],
            "up@example.com": ["uplinkRate": rate, "burst": 256 * 1024],
        ]])
        let size = 4 * 1024 * 1024
        // (size − burst) / rate = 3.75 s, less what the one read after the last hold brings (one
        // read per readable event, at most StreamReceiveAllocator.maximum = 256 KiB, paid for
        // after): at least 3.5 s; 3.3 leaves room for the clocks' edges. A read resumed while a hold
        // still ran (the client socket's writability flipping under a 256 KiB write) let one extra
        // read through per hold and moved the 4 MiB in about 2 s.
        let least = 3.3
        for (user, name) in [(down, "downlink"), (up, "uplink")] {
            let client = try startClient(user, serverPort: server.port, target: echo.port, name: "client-\(name)")
            let started = Date()
            try echoRoundTrip(port: client.dokodemoPort, payload: randomData(size), label: "\(name)-limited 4 MiB echo", timeout: 60)
            let took = Date().timeIntervalSince(started)
            XCTAssertGreaterThanOrEqual(took, least, "\(name) limited to 1 MiB/s moved 4 MiB in \(took) s")
            client.process.terminate()
        }
        assertRunning(server.process)
    }

    /// A client that half-closes once it has sent everything: NIO then reads the server's socket
    /// to its end unasked (its EOF drain), which must not carry the tail of an upload past the
    /// user's uplink rate. vmessd's own client with body security "zero" (no end marker) ends its
    /// request that way: socks → vmessd client ──VMess, FIN──▶ vmessd server (1 MiB/s up) → echo.
    func testUplinkRateHoldsAClientThatHalfCloses() throws {
        var up = User(email: "up@example.com")
        up.vmess = VMessTestUser(security: "zero")
        let echo = try makeEchoServer()
        let (server, _) = try startServer(users: [up], limits: ["users": [
            "up@example.com": ["uplinkRate": 1024 * 1024, "burst": 256 * 1024],
        ]])
        let client = try startVMessdClient(VMessdClientSetup(serverPort: server.port, user: up.vmess))
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
        let started = Date()
        try echoRoundTrip(fd: fd, payload: randomData(4 * 1024 * 1024), label: "uplink-limited 4 MiB echo, half-closed",
                          timeout: 60)
        let took = Date().timeIntervalSince(started)
        // As above: at least 3.5 s; the FIN arrives behind what the server's receive buffer holds
        // (MiBs on loopback), which NIO reads at once and the hold must still pace.
        XCTAssertGreaterThanOrEqual(took, 3.3, "uplink limited to 1 MiB/s moved 4 MiB in \(took) s")
        assertRunning(server.process, client.process)
    }
}
