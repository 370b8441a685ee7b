// The control-message codec: every message round-trips, the wire bytes are pinned, and malformed
// input is refused with a reason (never a crash), however it is cut.

import Shared
import XCTest

final class ControlMessageTests: XCTestCase {
    static let all: [ControlMessage] = [
        .attach(listeners: 3, sharedMemory: true),
        .attach(listeners: 0, sharedMemory: false),
        .heartbeat(sequence: 0x0102_0304_0506_0708),
        .drain(timeoutMilliseconds: 30_000),
        .stop,
        .accept,
        .reopenLogs,
        .addUser(inbound: "vmess-in", user: VMessUser(id: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", alterId: 4, level: 7, email: "bob@example.com")),
        .addUser(inbound: String(repeating: "t", count: 255), user: VMessUser(id: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", email: "é")),
        .removeUser(inbound: "vmess-in", email: "bob@example.com", disconnect: true),
        .removeUser(inbound: "", email: "", disconnect: false),
        .ready(pid: 4242),
        .heartbeatReply(sequence: 7, connections: 123_456),
        .draining(connections: 5),
        .failed(reason: "inbounds[0]: cannot load certificate: café"),
        .failed(reason: ""),
    ]

    func testRoundTrip() throws {
        for message in Self.all {
            XCTAssertEqual(try ControlMessage.decode(message.encoded()), message)
            XCTAssertLessThanOrEqual(message.encoded().count, ControlMessage.maximumSize)
        }
    }

    func testWireBytes() {
        XCTAssertEqual(ControlMessage.attach(listeners: 2, sharedMemory: true).encoded(),
                       [0x56, 1, 1, 0, 0, 3, 0, 2, 1])
        XCTAssertEqual(ControlMessage.heartbeat(sequence: 0x0102_0304_0506_0708).encoded(),
                       [0x56, 1, 2, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(ControlMessage.drain(timeoutMilliseconds: 1500).encoded(), [0x56, 1, 3, 0, 0, 4, 0, 0, 0x05, 0xDC])
        XCTAssertEqual(ControlMessage.stop.encoded(), [0x56, 1, 4, 0, 0, 0])
        XCTAssertEqual(ControlMessage.accept.encoded(), [0x56, 1, 5, 0, 0, 0])
        XCTAssertEqual(ControlMessage.reopenLogs.encoded(), [0x56, 1, 6, 0, 0, 0])
        XCTAssertEqual(ControlMessage.removeUser(inbound: "in", email: "b", disconnect: true).encoded(),
                       [0x56, 1, 8, 0, 0, 6, 2, 0x69, 0x6E, 1, 0x62, 1])
        XCTAssertEqual(ControlMessage.ready(pid: 258).encoded(), [0x56, 1, 64, 0, 0, 4, 0, 0, 1, 2])
        XCTAssertEqual(ControlMessage.heartbeatReply(sequence: 1, connections: 2).encoded(),
                       [0x56, 1, 65, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2])
        XCTAssertEqual(ControlMessage.failed(reason: "no").encoded(), [0x56, 1, 67, 0, 0, 2, 0x6E, 0x6F])
    }

    func testDescriptorCounts() {
        XCTAssertEqual(ControlMessage.attach(listeners: 3, sharedMemory: true).descriptorCount, 4)
        XCTAssertEqual(ControlMessage.attach(listeners: 3, sharedMemory: false).descriptorCount, 3)
        XCTAssertEqual(ControlMessage.heartbeat(sequence: 1).descriptorCount, 0)
    }

    /// Every strict prefix of every message is refused (as a length mismatch or too short).
    func testEveryTruncationIsRefused() {
        for message in Self.all {
            let bytes = message.encoded()
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try ControlMessage.decode(Array(bytes[0..<cut])), "\(message) cut at \(cut)")
            }
            XCTAssertThrowsError(try ControlMessage.decode(bytes + [0]), "\(message) with a trailing byte")
        }
    }

    func testMalformedHeaders() {
        XCTAssertEqual(decodeError([0x57, 1, 4, 0, 0, 0]), .badMagic(0x57))
        XCTAssertEqual(decodeError([0x56, 2, 4, 0, 0, 0]), .unsupportedVersion(2))
        XCTAssertEqual(decodeError([0x56, 1, 99, 0, 0, 0]), .unknownType(99))
        XCTAssertEqual(decodeError([0x56, 1, 4, 0, 0, 1]), .lengthMismatch(declared: 1, actual: 0))
        XCTAssertEqual(decodeError([0x56, 1, 1, 0, 0, 3, 0, 1, 2]), .badField("attach.sharedMemory", 2))
        // A payload that is longer than the type's fields.
        XCTAssertEqual(decodeError([0x56, 1, 4, 0, 0, 1, 9]), .lengthMismatch(declared: 1, actual: 0))
    }

    func testLongReasonIsCutAtACharacterBoundary() throws {
        let reason = String(repeating: "é", count: 600) // 1200 bytes
        let encoded = ControlMessage.failed(reason: reason).encoded()
        XCTAssertLessThanOrEqual(encoded.count - ControlMessage.headerSize, ControlMessage.maximumReasonBytes)
        guard case .failed(let decoded) = try ControlMessage.decode(encoded) else { return XCTFail() }
        XCTAssertTrue(reason.hasPrefix(decoded))
        XCTAssertEqual(decoded.count, 512)
    }

    func testRandomInputNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            var bytes = (0..<Int.random(in: 0...24, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.count >= 3 && Bool.random(using: &generator) { bytes[0] = 0x56; bytes[1] = 1 }
            _ = try? ControlMessage.decode(bytes)
        }
    }

    private func decodeError(_ bytes: [UInt8]) -> ControlMessageError? {
        do {
            _ = try ControlMessage.decode(bytes)
            return nil
        } catch {
            return error as? ControlMessageError
        }
    }
}
