// Matching passed sockets (LISTEN_FDS) to inbounds: by FileDescriptorName= = tag first, then by
// exact local address; a socket serves one inbound; several matching sockets are all used.

import Shared
import XCTest
@testable import Supervisor

final class SocketActivationTests: XCTestCase {
    private func address(_ host: String, _ port: Int) -> SocketAddress { try! SocketAddress(parsing: host, port: port) }

    func testByNameThenByAddress() {
        let passed = [
            PassedSocket(fd: 3, name: "vmess-in", address: address("0.0.0.0", 443)),
            PassedSocket(fd: 4, name: "vmessd.socket", address: address("127.0.0.1", 8080)),
            PassedSocket(fd: 5, name: "other", address: address("::", 9000)),
        ]
        let inbounds: [SocketActivation.InboundKey] = [
            .init(tag: "vmess-in", address: address("0.0.0.0", 10086)), // name wins over a different address
            .init(tag: nil, address: address("127.0.0.1", 8080)),
            .init(tag: "api", address: address("127.0.0.1", 9999)), // no match: vmessd opens its own
            .init(tag: "v6", address: address("::", 9000)),
        ]
        XCTAssertEqual(SocketActivation.assign(inbounds: inbounds, passed: passed), [0: [0], 1: [1], 3: [2]])
    }

    func testASocketServesOneInboundAndNamesGoFirst() {
        let passed = [PassedSocket(fd: 3, name: "b", address: address("127.0.0.1", 1000))]
        // Inbound 0 matches by address, inbound 1 by name: the name match takes it.
        let inbounds: [SocketActivation.InboundKey] = [
            .init(tag: "a", address: address("127.0.0.1", 1000)),
            .init(tag: "b", address: address("127.0.0.1", 2000)),
        ]
        XCTAssertEqual(SocketActivation.assign(inbounds: inbounds, passed: passed), [1: [0]])
    }

    func testSeveralSocketsForOneInbound() {
        // ReusePort=yes with the ListenStream= repeated: every socket of the name goes to the inbound.
        let passed = (0..<3).map { PassedSocket(fd: 3 + Int32($0), name: "vmess-in", address: address("0.0.0.0", 443)) }
        XCTAssertEqual(SocketActivation.assign(inbounds: [.init(tag: "vmess-in", address: nil)], passed: passed), [0: [0, 1, 2]])
    }

    func testNonListeningDescriptorsAreNeverAssigned() {
        let passed = [PassedSocket(fd: 3, name: "vmess-in", address: nil)]
        XCTAssertEqual(SocketActivation.assign(inbounds: [.init(tag: "vmess-in", address: address("0.0.0.0", 1))], passed: passed), [:])
    }

    func testAddressesMustMatchExactly() {
        let passed = [PassedSocket(fd: 3, name: nil, address: address("0.0.0.0", 443))]
        let inbounds: [SocketActivation.InboundKey] = [
            .init(tag: nil, address: address("::", 443)), // the IPv6 wildcard is another socket
            .init(tag: nil, address: address("127.0.0.1", 443)),
            .init(tag: nil, address: nil), // port 0
        ]
        XCTAssertEqual(SocketActivation.assign(inbounds: inbounds, passed: passed), [:])
    }
}

/// Unix sockets passed by systemd (ListenStream=/path or @name): by name or by their address, and
/// never to an inbound of the other kind.
final class UnixSocketActivationTests: XCTestCase {
    func testUnixSocketsMatchUnixInboundsOnly() {
        let path = UnixListenAddress(kind: .path, name: "/run/vmessd/in.sock")
        let abstract = UnixListenAddress(kind: .abstract, name: "vmessd")
        let tcp = try! SocketAddress(parsing: "127.0.0.1", port: 443)
        let passed = [
            PassedSocket(fd: 3, name: "vmessd.socket", address: nil, unixPath: Array("/run/vmessd/in.sock".utf8) + [0]),
            PassedSocket(fd: 4, name: "ws-in", address: nil, unixPath: [0] + Array("other".utf8)),
            PassedSocket(fd: 5, name: "tcp-in", address: nil, unixPath: [0] + Array("x".utf8)),
        ]
        let inbounds: [SocketActivation.InboundKey] = [
            .init(tag: "a", address: nil, unix: path),  // by address
            .init(tag: "ws-in", address: nil, unix: abstract),  // by name (the abstract name differs)
            .init(tag: "tcp-in", address: tcp),  // a TCP inbound never takes a Unix socket
        ]
        XCTAssertEqual(SocketActivation.assign(inbounds: inbounds, passed: passed), [0: [0], 1: [1]])
        // And a Unix inbound never takes a TCP socket of its name.
        let tcpSocket = [PassedSocket(fd: 3, name: "a", address: tcp)]
        XCTAssertEqual(SocketActivation.assign(inbounds: [.init(tag: "a", address: nil, unix: path)], passed: tcpSocket), [:])
    }
}
