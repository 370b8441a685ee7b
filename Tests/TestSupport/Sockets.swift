// Blocking loopback sockets for the interop and end-to-end harnesses: plain Glibc, no NIO. Every call
// that can block is bounded — sockets carry short SO_RCVTIMEO/SO_SNDTIMEO slices and the loops check a
// deadline — so a stuck peer turns into a `SocketError.timeout` naming what was being waited for, never
// a hung test.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum SocketError: Error, CustomStringConvertible {
    /// A syscall failed: which call, errno.
    case call(String, Int32)
    /// A bounded wait expired; the text says what was awaited.
    case timeout(String)
    /// A protocol-level surprise in the harness's own clients (SOCKS5 replies, short data, …).
    case unexpected(String)

    public var description: String {
        switch self {
        case .call(let call, let err): return "\(call) failed: \(String(cString: strerror(err))) (errno \(err))"
        case .timeout(let what): return "timed out: \(what)"
        case .unexpected(let what): return what
        }
    }
}

/// One-time process setup: a peer that closes while we write must give EPIPE, not kill the test runner.
public let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

public enum Sock {
    public static let streamType = Int32(SOCK_STREAM.rawValue)
    public static let datagramType = Int32(SOCK_DGRAM.rawValue)

    public static func loopback(port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return addr
    }

    public static func socket(_ type: Int32) throws -> Int32 {
        _ = ignoreSIGPIPE
        let fd = NetworkNamespace.creatingSockets { Glibc.socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0) }
        if fd < 0 { throw SocketError.call("socket", errno) }
        return fd
    }

    public static func bind(_ fd: Int32, port: UInt16) throws {
        var addr = loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 { throw SocketError.call("bind(127.0.0.1:\(port))", errno) }
    }

    public static func localPort(_ fd: Int32) throws -> UInt16 {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        if rc != 0 { throw SocketError.call("getsockname", errno) }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// A listening TCP socket on 127.0.0.1 (port 0 = ephemeral).
    public static func listen(port: UInt16 = 0, backlog: Int32 = 256) throws -> (fd: Int32, port: UInt16) {
        let fd = try socket(streamType)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            try bind(fd, port: port)
            if Glibc.listen(fd, backlog) != 0 { throw SocketError.call("listen", errno) }
            return (fd, try localPort(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    /// A connected TCP socket to 127.0.0.1:port. Loopback connects complete or get refused at once.
    public static func connect(port: UInt16) throws -> Int32 {
        let fd = try socket(streamType)
        var addr = loopback(port: port)
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } while rc != 0 && errno == EINTR
        if rc != 0 {
            let err = errno
            close(fd)
            throw SocketError.call("connect(127.0.0.1:\(port))", err)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// Per-call bounds for blocking recv/send: each call returns EAGAIN after `seconds`.
    public static func setTimeouts(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Result of one bounded read.
    public enum ReadResult: Equatable {
        case data(Int)
        case eof
        case wouldBlock
    }

    /// One recv into `buffer`; EAGAIN (the SO_RCVTIMEO slice expired) is `.wouldBlock`.
    public static func readSome(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> ReadResult {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .data(n) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SocketError.call("recv", errno)
            }
        }
    }

    /// Writes everything before `deadline` (socket must carry a send timeout slice).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, deadline: Date, what: String = "write") throws {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if Date() >= deadline {
                    throw SocketError.timeout("\(what): wrote \(offset) of \(bytes.count) bytes, peer not reading")
                }
                continue
            }
            throw SocketError.call("send (\(what), after \(offset) of \(bytes.count) bytes)", errno)
        }
    }

    public static func writeAll(_ fd: Int32, _ data: Data, deadline: Date, what: String = "write") throws {
        try data.withUnsafeBytes { try writeAll(fd, $0, deadline: deadline, what: what) }
    }

    /// Reads exactly `count` bytes (or fewer if EOF comes first) before `deadline`.
    public static func read(_ fd: Int32, count: Int, deadline: Date, what: String = "read") throws -> (data: Data, eof: Bool) {
        var out = Data(capacity: count)
        var chunk = [UInt8](repeating: 0, count: min(max(count, 1), 256 * 1024))
        while out.count < count {
            let want = min(chunk.count, count - out.count)
            let r = try chunk.withUnsafeMutableBytes { try readSome(fd, UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            switch r {
            case .data(let n): out.append(contentsOf: chunk[0..<n])
            case .eof: return (out, true)
            case .wouldBlock:
                if Date() >= deadline {
                    throw SocketError.timeout("\(what): received \(out.count) of \(count) bytes")
                }
            }
        }
        return (out, false)
    }
}

/// Free loopback ports: bind 127.0.0.1:0, read the port, close. (A tiny race with other processes is
/// accepted; the kernel hands out ephemeral ports round-robin, so immediate reuse is unlikely.)
public enum FreePort {
    public static func tcp() throws -> UInt16 { try pick(Sock.streamType) }

    /// `count` consecutive TCP ports that are free on 127.0.0.1 right now (for port-range configs).
    public static func tcpRange(_ count: Int) throws -> ClosedRange<UInt16> {
        for _ in 0..<100 {
            let base = UInt16.random(in: 20_000...(60_000 - UInt16(count)))
            var held: [Int32] = []
            defer { for fd in held { close(fd) } }
            var bound = 0
            for port in base..<(base + UInt16(count)) {
                guard let fd = try? Sock.socket(Sock.streamType) else { break }
                held.append(fd)
                guard (try? Sock.bind(fd, port: port)) != nil else { break }
                bound += 1
            }
            if bound == count { return base...(base + UInt16(count - 1)) }
        }
        throw HarnessError("no \(count) consecutive free ports found")
    }
    public static func udp() throws -> UInt16 { try pick(Sock.datagramType) }

    private static func pick(_ type: Int32) throws -> UInt16 {
        let fd = try Sock.socket(type)
        defer { close(fd) }
        try Sock.bind(fd, port: 0)
        return try Sock.localPort(fd)
    }
}

/// Polls connect() on 127.0.0.1:port until it succeeds or `timeout` passes. `stillAlive` lets the
/// caller abort early when the process that should open the port has already died.
public func waitForTCPPort(_ port: UInt16, timeout: TimeInterval, stillAlive: () -> Bool = { true }) throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: Error?
    while Date() < deadline {
        do {
            let fd = try Sock.connect(port: port)
            close(fd)
            return
        } catch {
            lastError = error
        }
        if !stillAlive() {
            throw SocketError.unexpected("port \(port) never opened: the process exited (last connect: \(lastError.map { "\($0)" } ?? "-"))")
        }
        usleep(50_000)
    }
    throw SocketError.timeout("port \(port) did not accept within \(timeout) s (last connect: \(lastError.map { "\($0)" } ?? "-"))")
}

/// A background thread whose result can be awaited with a bound.
public final class BackgroundTask<T> {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result<T, Error>?

    public init(_ name: String, _ body: @escaping () throws -> T) {
        let thread = Thread { [self] in
            let r = Result { try body() }
            lock.lock(); result = r; lock.unlock()
            done.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// nil if the task is still running after `timeout`.
    public func join(timeout: TimeInterval) -> Result<T, Error>? {
        if done.wait(timeout: .now() + timeout) == .timedOut { return nil }
        done.signal() // keep joinable more than once
        lock.lock(); defer { lock.unlock() }
        return result
    }

    /// Waits and rethrows; a timeout becomes `SocketError.timeout(what)`.
    public func value(timeout: TimeInterval, what: String) throws -> T {
        guard let r = join(timeout: timeout) else { throw SocketError.timeout(what) }
        return try r.get()
    }
}

/// Random test payloads (not crypto quality; only distinctness matters).
public func randomData(_ count: Int) -> Data {
    var g = SystemRandomNumberGenerator()
    var data = Data(count: count)
    data.withUnsafeMutableBytes { raw in
        let words = count / 8
        let p = raw.baseAddress!
        for i in 0..<words { p.storeBytes(of: g.next() as UInt64, toByteOffset: i * 8, as: UInt64.self) }
        for i in (words * 8)..<count { p.storeBytes(of: UInt8.random(in: 0...255, using: &g), toByteOffset: i, as: UInt8.self) }
    }
    return data
}

/// "first difference at byte N" text for payload comparisons.
public func describeMismatch(expected: Data, actual: Data) -> String? {
    if expected == actual { return nil }
    let common = min(expected.count, actual.count)
    var index = 0
    expected.withUnsafeBytes { e in
        actual.withUnsafeBytes { a in
            let eb = e.bindMemory(to: UInt8.self), ab = a.bindMemory(to: UInt8.self)
            while index < common && eb[index] == ab[index] { index += 1 }
        }
    }
    if index == common {
        return "length differs: expected \(expected.count) bytes, got \(actual.count) (identical prefix)"
    }
    return "first difference at byte \(index) of \(expected.count) (got \(actual.count) bytes)"
}
