// A captured VMess AEAD handshake replayed a dozen times against two workers: the original is served,
// every replay is refused whichever worker the kernel hands it to, because the AuthID replay filter
// lives in shared memory. (A per-worker filter would let the first replay that reaches the other
// worker through: its per-connection session history has not seen the request either.)

import Foundation
import NIOCore
@testable import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ReplayTests: EndToEndTestCase {
    func testReplayedHandshakeIsRejectedByEveryWorker() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2)

        // The handshake a client would send: AEAD header for the user, then one body chunk.
        let id = try XCTUnwrap(UserID(text: user.id))
        let request = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 0x42,
                                    options: [.chunkStream, .chunkMasking], security: .aes128GCM, command: .tcp,
                                    port: echo.port, address: .ipv4([127, 0, 0, 1]))
        let header = try AEADHeader.seal(request, cmdKey: id.cmdKey, time: Int64(Date().timeIntervalSince1970))
        let allocator = ByteBufferAllocator()
        var body = allocator.buffer(string: "hello through vmessd")
        let chunk = try BodyEncoder(.request(request)).encode(&body, allocator: allocator)
        let wire = Data(header + (chunk.getBytes(at: chunk.readerIndex, length: chunk.readableBytes) ?? []))

        // 1. The original is accepted: the echo comes back through the response stream.
        let original = try Sock.connect(port: server.port)
        defer { close(original) }
        Sock.setTimeouts(original, seconds: 0.25)
        try Sock.writeAll(original, wire, deadline: Date().addingTimeInterval(10))
        let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
        let response = try Sock.read(original, count: 38, deadline: Date().addingTimeInterval(10), what: "response header")
        let head = [UInt8](response.data)
        XCTAssertEqual(ResponseHeader.openAEADLength(Array(head[0..<18]), keys: keys), 4)
        XCTAssertEqual(ResponseHeader.openAEADHeader(Array(head[18..<38]), keys: keys), [0x42, 0, 0, 0])
        try eventually("the target got the original connection", timeout: 10) { echo.connectionCount == 1 }

        // 2. A dozen replays, all at once so they spread over the workers' sockets.
        var sent = 0
        var replays: [Int32] = []
        defer { for fd in replays { close(fd) } }
        func replay(_ count: Int) throws {
            for _ in 0..<count {
                let fd = try Sock.connect(port: server.port)
                replays.append(fd)
                Sock.setTimeouts(fd, seconds: 0.25)
                try Sock.writeAll(fd, wire, deadline: Date().addingTimeInterval(10))
                sent += 1
            }
        }
        func rejectedPerWorker() throws -> [Int: UInt64] {
            Dictionary(try status(server).workers.map { ($0.index, $0.rejected) }, uniquingKeysWith: +)
        }
        try replay(12)
        try eventually("every replay counted as rejected", timeout: 10) { try stats(server).rejected["replay"] == UInt64(sent) }
        // Both workers must have seen replays; if the kernel happened to send all twelve to one
        // socket (1 in 2048), send more until the other one has had its share too.
        var perWorker = try rejectedPerWorker()
        while perWorker.values.filter({ $0 > 0 }).count < 2 && sent < 48 {
            try replay(4)
            try eventually("replays counted", timeout: 10) { try stats(server).rejected["replay"] == UInt64(sent) }
            perWorker = try rejectedPerWorker()
        }
        XCTAssertEqual(perWorker.values.filter { $0 > 0 }.count, 2, "replays reached both workers: \(perWorker)")

        // Not a single byte answered to any replay, and the target never saw a second connection.
        usleep(500_000)
        for fd in replays {
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            // Still open (EAGAIN), or closed without a byte: the anti-probing drain closes once it has
            // read its per-server threshold (54 + 0..3265 + 0..63 bytes, derived from the user ids), and
            // with a random test user that threshold is below this ~160-byte replay about 3% of the time.
            XCTAssertTrue(n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)), "a replay got an answer (recv \(n))")
        }
        XCTAssertEqual(echo.connectionCount, 1)
        let totals = try stats(server)
        XCTAssertEqual(totals.rejected["replay"], UInt64(sent))
        XCTAssertEqual(totals.rejected.values.reduce(0, +), UInt64(sent), "rejected for being replays, nothing else: \(totals.rejected)")
    }
}
