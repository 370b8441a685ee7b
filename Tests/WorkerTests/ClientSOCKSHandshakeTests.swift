import NIOCore
import XCTest
@testable import Shared
@testable import Worker

/// The SOCKS state machine: every accepted exchange, every refusal with its reply code, and each
/// input also fed one byte at a time and split at every offset; hostile input never crashes.
final class ClientSOCKSHandshakeTests: XCTestCase {
    typealias Outcome = (replies: [[UInt8]], final: ClientHandshakeStep?, rest: [UInt8])

    /// Feeds `input` in the given pieces, accumulating like the handler does.
    func run(_ settings: SocksInboundSettings, _ pieces: [[UInt8]]) -> Outcome {
        var machine = SOCKSHandshake(settings: settings)
        var buffer = ByteBuffer()
        var replies: [[UInt8]] = []
        for (index, piece) in pieces.enumerated() {
            buffer.writeBytes(piece)
            loop: while true {
                let step = machine.step(&buffer)
                switch step {
                case .needMore: break loop
                case .reply(let r):
                    replies.append(r)
                    if buffer.readableBytes == 0 { break loop }
                default:
                    // What the client sent after its request belongs to the relay.
                    return (replies, step, buffer.readableBytesView.map { $0 } + pieces[(index + 1)...].joined())
                }
            }
        }
        return (replies, nil, buffer.readableBytesView.map { $0 })
    }

    /// The same outcome whole, byte by byte, and split at every offset.
    func runAllSplits(_ settings: SocksInboundSettings, _ input: [UInt8], file: StaticString = #filePath, line: UInt = #line,
                      check: (Outcome) -> Void) {
        check(run(settings, [input]))
        check(run(settings, input.map { [$0] }))
        for cut in 1..<input.count {
            check(run(settings, [Array(input[..<cut]), Array(input[cut...])]))
        }
    }

    var noAuth: SocksInboundSettings { SocksInboundSettings() }
    var password: SocksInboundSettings {
        var s = SocksInboundSettings()
        s.auth = .password
        s.accounts = [ProxyAccount(user: "alice", pass: "s3cret")]
        return s
    }

    func destination(_ step: ClientHandshakeStep?) -> Destination? {
        if case .connect(let r)? = step { return r.destination }
        return nil
    }

    func testConnectDomainWithPipelinedPayload() {
        let input: [UInt8] = [5, 1, 0] + [5, 1, 0, 3, 11] + Array("example.com".utf8) + [0x01, 0xBB] + Array("GET".utf8)
        runAllSplits(noAuth, input) { out in
            XCTAssertEqual(out.replies, [[5, 0]])
            XCTAssertEqual(destination(out.final), Destination(network: .tcp, address: .domain("example.com"), port: 443))
            if case .connect(let r)? = out.final { XCTAssertEqual(r.reply, [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]) }
            XCTAssertEqual(out.rest, Array("GET".utf8))
        }
    }

    func testConnectIPv4AndIPv6() {
        let v4: [UInt8] = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        XCTAssertEqual(destination(run(noAuth, [v4]).final), Destination(network: .tcp, address: .ipv4([127, 0, 0, 1]), port: 80))
        let v6: [UInt8] = [5, 1, 0, 5, 1, 0, 4] + [UInt8](repeating: 0, count: 15) + [1] + [0x1F, 0x90]
        XCTAssertEqual(destination(run(noAuth, [v6]).final),
                       Destination(network: .tcp, address: .ipv6([UInt8](repeating: 0, count: 15) + [1]), port: 8080))
        // A domain that is an IP literal is that IP, as the VMess header would carry it.
        let literal: [UInt8] = [5, 1, 0, 5, 1, 0, 3, 8] + Array("10.0.0.1".utf8) + [0, 22]
        XCTAssertEqual(destination(run(noAuth, [literal]).final), Destination(network: .tcp, address: .ipv4([10, 0, 0, 1]), port: 22))
    }

    func testPasswordAccepted() {
        let input: [UInt8] = [5, 2, 0, 2] + [1, 5] + Array("alice".utf8) + [6] + Array("s3cret".utf8)
            + [5, 1, 0, 1, 1, 2, 3, 4, 0, 80]
        runAllSplits(password, input) { out in
            XCTAssertEqual(out.replies, [[5, 2], [1, 0]])
            XCTAssertEqual(destination(out.final), Destination(network: .tcp, address: .ipv4([1, 2, 3, 4]), port: 80))
        }
    }

    func testPasswordRefused() {
        let wrong: [UInt8] = [5, 1, 2] + [1, 5] + Array("alice".utf8) + [5] + Array("wrong".utf8)
        runAllSplits(password, wrong) { out in
            XCTAssertEqual(out.replies, [[5, 2]])
            guard case .refuse(let r)? = out.final else { return XCTFail("not refused: \(String(describing: out.final))") }
            XCTAssertEqual(r, [1, 1])
        }
        // A client offering only "no authentication" to a password inbound: no acceptable method.
        guard case .refuse(let r)? = run(password, [[5, 1, 0]]).final else { return XCTFail("not refused") }
        XCTAssertEqual(r, [5, 0xFF])
    }

    func testUDPAssociate() {
        var udp = noAuth
        udp.udp = true
        let input: [UInt8] = [5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]
        guard case .associateUDP(let client)? = run(udp, [input]).final else { return XCTFail("no associate") }
        XCTAssertEqual(client, Destination(network: .udp, address: .ipv4([0, 0, 0, 0]), port: 0))
        // UDP off: command not supported.
        guard case .refuse(let r)? = run(noAuth, [input]).final else { return XCTFail("not refused") }
        XCTAssertEqual(r, SOCKSMessage.reply(.commandNotSupported))
    }

    func testRefusalCodes() {
        guard case .refuse(let bind)? = run(noAuth, [[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]]).final else { return XCTFail() }
        XCTAssertEqual(bind[1], SOCKSMessage.Reply.commandNotSupported.rawValue)
        guard case .refuse(let atyp)? = run(noAuth, [[5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80]]).final else { return XCTFail() }
        XCTAssertEqual(atyp[1], SOCKSMessage.Reply.addressTypeNotSupported.rawValue)
        guard case .refuse(let bad)? = run(noAuth, [[5, 1, 0, 5, 1, 0, 3, 3] + Array("a b".utf8) + [0, 80]]).final
        else { return XCTFail() }
        XCTAssertEqual(bad[1], SOCKSMessage.Reply.generalFailure.rawValue)
        guard case .refuse(let none)? = run(noAuth, [Array("GET / HTTP/1.1\r\n".utf8)]).final else { return XCTFail() }
        XCTAssertEqual(none, [], "not SOCKS: closed without a reply")
    }

    func testSOCKS4a() {
        let input: [UInt8] = [4, 1, 0, 80, 0, 0, 0, 1] + Array("user".utf8) + [0] + Array("example.org".utf8) + [0] + [0xAA]
        runAllSplits(noAuth, input) { out in
            XCTAssertEqual(destination(out.final), Destination(network: .tcp, address: .domain("example.org"), port: 80))
            if case .connect(let r)? = out.final { XCTAssertEqual(r.reply, SOCKSMessage.reply4(granted: true)) }
            XCTAssertEqual(out.rest, [0xAA])
        }
        let plain4: [UInt8] = [4, 1, 1, 187, 8, 8, 4, 4, 0]
        XCTAssertEqual(destination(run(noAuth, [plain4]).final), Destination(network: .tcp, address: .ipv4([8, 8, 4, 4]), port: 443))
        // No SOCKS4 where SOCKS5 needs a password.
        guard case .refuse(let r)? = run(password, [plain4]).final else { return XCTFail() }
        XCTAssertEqual(r, SOCKSMessage.reply4(granted: false))
        // An endless user id is refused, not buffered.
        guard case .refuse? = run(noAuth, [[4, 1, 0, 80, 1, 2, 3, 4] + [UInt8](repeating: 0x41, count: 300)]).final
        else { return XCTFail() }
    }

    func testHostileInputNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...600, using: &generator)
            var input = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !input.isEmpty, Bool.random() { input[0] = [4, 5].randomElement()! }
            let out = run(Bool.random() ? noAuth : password, [input])
            XCTAssertLessThanOrEqual(out.rest.count, input.count)
        }
    }

    func testDatagramHeaderRoundTrip() {
        let source = Destination(network: .udp, address: .ipv4([127, 0, 0, 1]), port: 5353)
        var datagram = ByteBuffer(bytes: SOCKSMessage.datagramHeader(source: source))
        datagram.writeString("hello")
        guard let (dest, payload) = SOCKSMessage.parseDatagram(datagram) else { return XCTFail("not parsed") }
        XCTAssertEqual(dest, source)
        XCTAssertEqual(payload.getString(at: payload.readerIndex, length: payload.readableBytes), "hello")
        // Fragments and truncated headers are dropped.
        XCTAssertNil(SOCKSMessage.parseDatagram(ByteBuffer(bytes: [0, 0, 1, 1, 127, 0, 0, 1, 0, 53])))
        XCTAssertNil(SOCKSMessage.parseDatagram(ByteBuffer(bytes: [0, 0, 0, 1, 127, 0])))
    }
}
