// The syscall layer both processes stand on: sockets, memfds, reading to end, errors.

import Glibc
import Shared
import XCTest

final class PosixTests: XCTestCase {
    func testCPUCountIsAtLeastOne() {
        let count = Posix.availableCPUCount()
        XCTAssertGreaterThanOrEqual(count, 1)
        XCTAssertLessThanOrEqual(count, max(1, sysconf(Int32(_SC_NPROCESSORS_CONF))))
    }

    func testTwoReusePortSocketsShareOnePort() throws {
        let first = try Posix.makeListeningSocket(host: "127.0.0.1", port: 0, reusePort: true)
        defer { try? Posix.close(first) }
        let address = try Posix.localAddress(fd: first)
        XCTAssertEqual(address.host, "127.0.0.1")
        XCTAssertNotEqual(address.port, 0)
        XCTAssertEqual(address.description, "127.0.0.1:\(address.port)")

        let second = try Posix.makeListeningSocket(host: "127.0.0.1", port: address.port, reusePort: true)
        defer { try? Posix.close(second) }
        XCTAssertEqual(try Posix.localAddress(fd: second), address)

        // Without SO_REUSEPORT the address is busy: what ListenerSet's probe relies on.
        XCTAssertThrowsError(try Posix.makeBoundSocket(host: "127.0.0.1", port: address.port, reusePort: false)) { error in
            XCTAssertEqual((error as? PosixError)?.errno, EADDRINUSE)
        }
    }

    func testListeningSocketIsCloseOnExecAndAccepts() throws {
        let fd = try Posix.makeListeningSocket(host: "127.0.0.1", port: 0)
        defer { try? Posix.close(fd) }
        XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0)

        // A connection reaches it (the kernel completes the handshake into the accept queue).
        let port = try Posix.localAddress(fd: fd).port
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(port).bigEndian
        sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let result = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(result, 0)
    }

    func testIPv6WildcardIsDualStack() throws {
        let fd: Int32
        do {
            fd = try Posix.makeListeningSocket(host: "::", port: 0)
        } catch let error as PosixError where error.errno == EAFNOSUPPORT || error.errno == EADDRNOTAVAIL {
            throw XCTSkip("no IPv6 here: \(error)")
        }
        defer { try? Posix.close(fd) }
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        XCTAssertEqual(getsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &value, &length), 0)
        XCTAssertEqual(value, 0)
        let address = try Posix.localAddress(fd: fd)
        XCTAssertEqual(address.family, .ipv6)
        XCTAssertEqual(address.description, "[::]:\(address.port)")
    }

    func testAddressParsing() throws {
        XCTAssertEqual(try SocketAddress(parsing: "[::1]", port: 80).description, "[::1]:80")
        XCTAssertEqual(try SocketAddress(parsing: "10.1.2.3", port: 0).family, .ipv4)
        XCTAssertThrowsError(try SocketAddress(parsing: "example.com", port: 80)) { error in
            XCTAssertTrue("\(error)".contains("example.com"), "\(error)")
        }
        XCTAssertThrowsError(try SocketAddress(parsing: "127.0.0.1", port: 70000))
        XCTAssertThrowsError(try SocketAddress(parsing: "1.2.3", port: 80))
    }

    func testMemfdRoundTrip() throws {
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let fd = try Posix.makeMemfd(name: "test", contents: payload, seal: true)
        defer { try? Posix.close(fd) }
        XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0)
        XCTAssertEqual(try Posix.readAll(fd: fd), payload)
        // At the end now: a second read gives nothing.
        XCTAssertEqual(try Posix.readAll(fd: fd), [])
    }

    func testEmptyMemfd() throws {
        let fd = try Posix.makeMemfd(name: "empty", contents: [])
        defer { try? Posix.close(fd) }
        XCTAssertEqual(try Posix.readAll(fd: fd), [])
    }

    func testReadAllFromPipe() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        try Posix.writeAll(fd: ends[1], Array("hello".utf8))
        try Posix.close(ends[1])
        XCTAssertEqual(try Posix.readAll(fd: ends[0]), Array("hello".utf8))
        try Posix.close(ends[0])
    }

    func testErrorNamesCallAndReason() {
        XCTAssertThrowsError(try Posix.retryingEINTR("read(-1)") { read(-1, nil, 0) }) { error in
            let posix = error as? PosixError
            XCTAssertEqual(posix?.errno, EBADF)
            XCTAssertEqual(posix?.description, "read(-1): Bad file descriptor (errno \(EBADF))")
        }
    }

    func testOpenFileLimitIsRaisedToHard() throws {
        let limit = try Posix.raiseOpenFileLimit()
        XCTAssertGreaterThanOrEqual(limit.new, limit.old)
        var current = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &current)
        XCTAssertEqual(UInt64(current.rlim_cur), UInt64(current.rlim_max))
    }
}
