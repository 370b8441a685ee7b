// Hostile clients against the real binaries (issue 7): what one client sends must never cost anyone
// else their connection.
//
// - An AEAD AuthID for a real user with a timestamp far from now (Int64.min used to overflow the skew
//   arithmetic and trap the worker: 16 bytes, replayable by anyone who saw them).
// - More connections from one address than `"vmessd": {"limits": {"connectionsPerSource": N}}`
//   allows: the extra ones are closed at accept and counted; everybody else is served.

import Foundation
import NIOCore
@testable import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class HostileClientTests: EndToEndTestCase {
    /// An AEAD request header for `user` claiming `time` (the AuthID passes its checksum).
    private func header(for user: VMessTestUser, time: Int64) throws -> Data {
        let id = try XCTUnwrap(UserID(text: user.id))
        let request = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 1,
                                    options: [.chunkStream, .chunkMasking], security: .aes128GCM, command: .tcp,
                                    port: 80, address: .ipv4([127, 0, 0, 1]))
        return Data(try AEADHeader.seal(request, cmdKey: id.cmdKey, time: time))
    }

    func testAuthIDsWithExtremeTimestampsAreRejectedAndTheWorkerLives() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 1)
        let worker = try status(server).workers[0].pid

        var sent = 0
        for time in [Int64.min, .min + 1, -1, 0, .max, .max - 1] {
            let wire = try header(for: user, time: time)
            // The bare 16-byte AuthID (what crashed the worker), then the whole header, each twice:
            // the bytes never expire, so anyone who saw them could send them again.
            for bytes in [wire.prefix(16), wire, wire.prefix(16), wire] {
                let fd = try Sock.connect(port: server.port)
                defer { close(fd) }
                try Sock.writeAll(fd, Data(bytes), deadline: Date().addingTimeInterval(5))
                sent += 1
            }
        }
        // Times years away are no clock: counted as unknown users (what a valid clock skew is counted
        // as is checked by ServerHandshakeTests).
        try eventually("every hostile handshake rejected", timeout: 10) {
            try stats(server).rejected["unknown_user"] == UInt64(sent)
        }
        let after = try status(server)
        XCTAssertEqual(after.workers.map(\.pid), [worker], "the worker is the same process")
        XCTAssertEqual(after.workers[0].restarts, 0)
        XCTAssertTrue(Self.exists(worker))

        // And it serves a genuine client.
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "genuine", timeout: 20)
    }

    /// Silent connections from 127.0.0.1, `limit + 8` of them, against a worker whose `key` limit is
    /// `limit`: exactly the 8 extra ones are closed at accept and counted as `counter`; then a genuine
    /// client (also from 127.0.0.1) is served once the others have gone.
    private func checkConnectionLimit(_ key: String, counter: String) throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("bob@example.com")
        let limit = 16
        let server = try startVMessd(users: [user], workers: 1, daemon: ["limits": [key: limit]])

        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<(limit + 8) {
            let fd = try Sock.connect(port: server.port)
            Sock.setTimeouts(fd, seconds: 0.25)
            idle.append(fd)
        }
        try eventually("the extra connections refused", timeout: 10) {
            try stats(server).rejected[counter] == 8
        }
        // Exactly the extra ones were closed by the server (EOF or reset), the others are held.
        var closedByServer = 0
        for fd in idle {
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno == ECONNRESET) { closedByServer += 1 }
        }
        XCTAssertEqual(closedByServer, 8, key)
        XCTAssertEqual(try status(server).workers[0].connections, UInt64(limit), key)

        for fd in idle { close(fd) }
        idle = []
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try eventually("serving again", timeout: 20) {
            (try? ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "after", timeout: 5)) != nil
        }
    }

    func testConnectionsOverThePerSourceLimitAreClosedAtAcceptAndCounted() throws {
        try checkConnectionLimit("connectionsPerSource", counter: "dropped_source_limit")
    }

    func testConnectionsOverThePerWorkerLimitAreClosedAtAcceptAndCounted() throws {
        try checkConnectionLimit("connectionsPerWorker", counter: "dropped_connection_limit")
    }

    func testConfigRefusesOutOfRangeLimits() throws {
        let vmessd = try VMessdBinaries.vmessd()
        for bad in [["connectionsPerSource": 0], ["connectionsPerWorker": -1], ["udpDatagramToClient": 70_000],
                    ["waitingBytesPerWorker": 1000], ["bogus": 1]] as [[String: Any]] {
            let path = try writeFile(nextName("limits") + ".json",
                                     Self.serverConfig(port: 1, users: [VMessTestUser("c@x")], daemon: ["limits": bad]))
            let result = try run(vmessd, ["test", "-c", path])
            XCTAssertEqual(result.status, 23, "\(bad): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("vmessd.limits"), "the error names the key: \(result.stderr)")
        }
    }
}
