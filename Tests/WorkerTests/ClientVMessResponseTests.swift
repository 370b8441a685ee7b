import Foundation
import NIOCore
import XCTest
@testable import Shared
@testable import Worker

/// The client's side of a VMess exchange without sockets: the request a configured user produces is
/// accepted by the server handshake, and the response reader takes both header kinds (§8), checks V
/// (§8.6) and refuses a header it cannot open — also when fed one byte at a time.
final class ClientVMessResponseTests: XCTestCase {
    let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func user(security: String, alterId: Int = 0) -> VMessClientUser {
        VMessClientUser(VMessUser(id: uuid, alterId: alterId, security: security))
    }

    func testWireSecurityAsTheReferenceClient() {
        XCTAssertEqual(VMessClientUser.wireSecurity("aes-128-gcm").0, .aes128GCM)
        XCTAssertEqual(VMessClientUser.wireSecurity("aes-128-gcm").1.rawValue, 0x0D)
        XCTAssertEqual(VMessClientUser.wireSecurity("chacha20-poly1305").0, .chacha20Poly1305)
        XCTAssertEqual(VMessClientUser.wireSecurity("none").0, .none)
        XCTAssertEqual(VMessClientUser.wireSecurity("none").1.rawValue, 0x05)
        XCTAssertEqual(VMessClientUser.wireSecurity("zero").0, .none)
        XCTAssertEqual(VMessClientUser.wireSecurity("zero").1.rawValue, 0x00)
        let auto = VMessClientUser.wireSecurity("auto")
        XCTAssertEqual(auto.0, CPUFeatures.acceleratesAESGCM ? .aes128GCM : .chacha20Poly1305)
        XCTAssertEqual(auto.1.rawValue, 0x0D)
        XCTAssertEqual(VMessClientUser.wireSecurity(nil).0, auto.0)
    }

    /// The request header of each kind opens with the server's own handshake code.
    func testRequestsAreAcceptedByTheServerHandshake() throws {
        let table = try UserTable(settings: VMessInboundSettings(users: [VMessUser(id: uuid, alterId: 4)]))
        let destination = Destination(network: .tcp, address: .domain("example.com"), port: 443)
        for alterId in [0, 4] {
            let u = user(security: "chacha20-poly1305", alterId: alterId)
            let now = Int64(Date().timeIntervalSince1970)
            let request = try u.makeRequest(command: .tcp, destination: destination, now: now)
            XCTAssertEqual(request.legacy, alterId > 0)
            var handshake = ServerHandshake(users: table, replay: GenerationalReplayFilter(), sessions: SessionHistory(),
                                            disableInsecure: false)
            var wire = ByteBuffer(bytes: request.wire)
            guard case .accepted(let accepted) = handshake.feed(&wire, now: now) else {
                return XCTFail("alterId \(alterId): not accepted")
            }
            XCTAssertEqual(accepted.header, request.header)
            XCTAssertEqual(accepted.legacy, alterId > 0)
            XCTAssertEqual(accepted.header.address, .domain("example.com"))
        }
    }

    func response(for request: VMessClientRequest, v: UInt8? = nil, command: SwitchAccountCommand? = nil) throws -> [UInt8] {
        let plain = ResponseHeader.plain(responseAuth: v ?? request.header.responseAuth, command: command)
        if request.legacy {
            return try AESCFBStream(key: request.responseKeys.key, iv: request.responseKeys.iv, encrypting: true).apply(plain)
        }
        return try ResponseHeader.sealAEAD(plain, keys: request.responseKeys)
    }

    func feed(_ reader: inout VMessResponseReader, _ bytes: [UInt8], oneByOne: Bool) throws -> (Bool, [UInt8]) {
        var pending = ByteBuffer()
        for piece in oneByOne ? bytes.map({ [$0] }) : [bytes] {
            pending.writeBytes(piece)
            if try reader.feed(&pending) { return (true, pending.readableBytesView.map { $0 }) }
        }
        return (false, [])
    }

    func testResponseHeaderBothKindsAndDripFeed() throws {
        let destination = Destination(network: .tcp, address: .ipv4([1, 2, 3, 4]), port: 80)
        for alterId in [0, 2] {
            for oneByOne in [false, true] {
                let request = try user(security: "aes-128-gcm", alterId: alterId).makeRequest(command: .tcp, destination: destination, now: 1_700_000_000)
                var reader = try VMessResponseReader(request: request)
                let (done, rest) = try feed(&reader, try response(for: request) + [9, 9], oneByOne: oneByOne)
                XCTAssertTrue(done)
                XCTAssertEqual(rest, oneByOne ? [] : [9, 9], "body bytes after the header are left alone")
            }
        }
    }

    /// Dynamic port: a switch-account command in either header kind is read (and the body after it
    /// left alone); one with a bad checksum is ignored, as V2Ray's client does.
    func testSwitchAccountCommandIsReadFromBothHeaderKinds() throws {
        let destination = Destination(network: .tcp, address: .ipv4([1, 2, 3, 4]), port: 80)
        let command = SwitchAccountCommand(port: 10_086, id: UserID(bytes: SecureRandom.bytes(16)), alterIds: 4, level: 2,
                                           validMinutes: 30)
        for alterId in [0, 2] {
            for oneByOne in [false, true] {
                let request = try user(security: "aes-128-gcm", alterId: alterId).makeRequest(command: .tcp, destination: destination, now: 1_700_000_000)
                var reader = try VMessResponseReader(request: request)
                let (done, rest) = try feed(&reader, try response(for: request, command: command) + [9, 9], oneByOne: oneByOne)
                XCTAssertTrue(done)
                XCTAssertEqual(rest, oneByOne ? [] : [9, 9])
                XCTAssertEqual(reader.switchAccount, command, "alterId \(alterId)")
            }
        }
        XCTAssertNil(SwitchAccountCommand.decode([0, 0, 0, 0] + [UInt8](repeating: 0, count: 23)))
    }

    func testWrongResponseAuthIsRefused() throws {
        let destination = Destination(network: .tcp, address: .ipv4([1, 2, 3, 4]), port: 80)
        for alterId in [0, 2] {
            let request = try user(security: "aes-128-gcm", alterId: alterId).makeRequest(command: .tcp, destination: destination, now: 1_700_000_000)
            var reader = try VMessResponseReader(request: request)
            XCTAssertThrowsError(try feed(&reader, try response(for: request, v: request.header.responseAuth &+ 1), oneByOne: false)) {
                guard case VMessResponseReader.Failure.responseAuthMismatch = $0 else { return XCTFail("\($0)") }
            }
        }
    }

    func testGarbageResponseFailsAuthentication() throws {
        let request = try user(security: "aes-128-gcm").makeRequest(command: .tcp,
                                                                    destination: Destination(network: .tcp, address: .domain("a.b"), port: 1),
                                                                    now: 1_700_000_000)
        var reader = try VMessResponseReader(request: request)
        XCTAssertThrowsError(try feed(&reader, SecureRandom.bytes(64), oneByOne: false)) {
            XCTAssertEqual($0 as? VMessResponseReader.Failure, .authenticationFailed)
        }
    }

    func testMuxRequestCarriesNoAddress() throws {
        let request = try user(security: "none").makeRequest(command: .mux,
                                                             destination: Destination(network: .tcp, address: .domain("v1.mux.cool"), port: 9527),
                                                             now: 1_700_000_000)
        // 38 fixed bytes + padding + checksum: no port/address for command 3 (§6.1).
        XCTAssertEqual(request.header.encodeCommandSection().count, 38 + request.header.padding.count + 4)
    }
}
