// TCP target servers for the proxied traffic: an accept thread on 127.0.0.1:ephemeral plus one thread
// per connection. `stop()` shuts every socket down (which wakes any blocked accept/recv/send), waits a
// bounded time for the threads and closes the descriptors — a thread closes its own fd, so no fd number
// is ever closed twice or reused under a running thread.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class EchoServer {
    public enum Mode {
        /// Echo every byte; on the client's half-close finish echoing, then shut down the write side.
        case echo
        /// One-direction traffic: send `download` then shut down the write side, and meanwhile record
        /// everything the client sends up to its EOF (a sink).
        case sourceSink(download: Data)
    }

    /// What one accepted connection did (for sink checks and diagnostics).
    final class Connection {
        fileprivate(set) var received = Data()
        fileprivate(set) var sent = 0
        fileprivate(set) var sawEOF = false
        fileprivate(set) var finished = false
        fileprivate(set) var error: String?
    }

    public let port: UInt16
    public let mode: Mode
    private let listenFD: Int32
    private let lock = NSLock()
    private var stopped = false
    private var openFDs = Set<Int32>()
    private var connections: [Connection] = []
    private var threads: [BackgroundTask<Void>] = []
    private var acceptTask: BackgroundTask<Void>!

    public init(mode: Mode = .echo) throws {
        self.mode = mode
        (listenFD, port) = try Sock.listen()
        acceptTask = BackgroundTask("echo-accept-\(port)") { [self] in acceptLoop() }
    }

    deinit { stop() }

    public var connectionCount: Int { lock.lock(); defer { lock.unlock() }; return connections.count }

    /// Snapshot of the received bytes etc. of connection `index` (accept order).
    public func connection(_ index: Int) -> (received: Data, sent: Int, sawEOF: Bool, finished: Bool, error: String?)? {
        lock.lock(); defer { lock.unlock() }
        guard index < connections.count else { return nil }
        let c = connections[index]
        return (c.received, c.sent, c.sawEOF, c.finished, c.error)
    }

    /// One line per connection that did not move `expectedPerConnection` bytes each way: tells a lost
    /// upload (the target never got the bytes) from a lost download (the target echoed them).
    public func summary(expectedPerConnection: Int) -> String {
        lock.lock(); defer { lock.unlock() }
        var lines = ["target server: \(connections.count) connections accepted"]
        for (i, c) in connections.enumerated() {
            let got: Int
            switch mode {
            case .echo: got = c.sent // echo: sent == received
            case .sourceSink: got = c.received.count
            }
            if got < expectedPerConnection || c.error != nil {
                lines.append("  target connection #\(i): received/echoed \(got) of \(expectedPerConnection) bytes, EOF: \(c.sawEOF), error: \(c.error ?? "none")")
            }
        }
        if lines.count == 1 { lines.append("  every target connection received and echoed all its bytes") }
        return lines.joined(separator: "\n")
    }

    /// Polls until connection `index` has received `count` bytes (or reached EOF/error) — bounded.
    public func waitForUpload(connection index: Int, count: Int, timeout: TimeInterval) throws -> Data {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let c = connection(index), c.received.count >= count || c.sawEOF || c.error != nil {
                return c.received
            }
            if Date() >= deadline {
                let got = connection(index)?.received.count
                throw SocketError.timeout("target server connection #\(index): received \(got.map(String.init) ?? "no connection") of \(count) bytes")
            }
            usleep(20_000)
        }
    }

    public func stop() {
        lock.lock()
        if stopped { lock.unlock(); return }
        stopped = true
        // shutdown (not close) wakes blocked threads without freeing the descriptor numbers under them.
        Glibc.shutdown(listenFD, Int32(SHUT_RDWR))
        for fd in openFDs { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        let all = threads
        lock.unlock()
        _ = acceptTask?.join(timeout: 5)
        for t in all { _ = t.join(timeout: 5) }
        close(listenFD)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return // shut down by stop()
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC) // children spawned by the test must not inherit it
            lock.lock()
            if stopped { lock.unlock(); close(fd); return }
            openFDs.insert(fd)
            let conn = Connection()
            connections.append(conn)
            let task = BackgroundTask("echo-conn-\(port)-\(connections.count)") { [self] in serve(fd, conn) }
            threads.append(task)
            lock.unlock()
        }
    }

    private func serve(_ fd: Int32, _ conn: Connection) {
        Sock.setTimeouts(fd, seconds: 0.5)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            switch mode {
            case .echo: try echo(fd, conn)
            case .sourceSink(let download): try sourceSink(fd, conn, download)
            }
        } catch {
            lock.lock(); conn.error = "\(error)"; lock.unlock()
        }
        lock.lock()
        conn.finished = true
        openFDs.remove(fd)
        lock.unlock()
        close(fd)
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    private func echo(_ fd: Int32, _ conn: Connection) throws {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopped {
            let r = try buffer.withUnsafeMutableBytes { try Sock.readSome(fd, $0) }
            switch r {
            case .data(let n):
                // Writes block while the client is not reading; the client reads concurrently, and
                // stop() unblocks us via shutdown. The deadline is generous on purpose.
                try buffer.withUnsafeBytes {
                    try Sock.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<n]), deadline: Date().addingTimeInterval(120), what: "echo")
                }
                lock.lock(); conn.sent += n; lock.unlock()
            case .eof:
                lock.lock(); conn.sawEOF = true; lock.unlock()
                Glibc.shutdown(fd, Int32(SHUT_WR))
                return
            case .wouldBlock:
                continue
            }
        }
    }

    private func sourceSink(_ fd: Int32, _ conn: Connection, _ download: Data) throws {
        let writer = BackgroundTask<Void>("source-\(port)") { [self] in
            var offset = 0
            let slice = 64 * 1024
            while offset < download.count && !isStopped {
                let end = min(offset + slice, download.count)
                try Sock.writeAll(fd, download.subdata(in: offset..<end), deadline: Date().addingTimeInterval(120), what: "source")
                offset = end
                lock.lock(); conn.sent = offset; lock.unlock()
            }
            Glibc.shutdown(fd, Int32(SHUT_WR))
        }
        var readError: Error?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        do {
            reading: while !isStopped {
                let r = try buffer.withUnsafeMutableBytes { try Sock.readSome(fd, $0) }
                switch r {
                case .data(let n):
                    lock.lock(); conn.received.append(contentsOf: buffer[0..<n]); lock.unlock()
                case .eof:
                    lock.lock(); conn.sawEOF = true; lock.unlock()
                    break reading
                case .wouldBlock:
                    continue
                }
            }
        } catch {
            readError = error
            Glibc.shutdown(fd, Int32(SHUT_RDWR)) // unblock the writer before the fd is closed
        }
        // The fd is closed by our caller only after the writer is done with it.
        if let result = writer.join(timeout: 125) { try result.get() } else { Glibc.shutdown(fd, Int32(SHUT_RDWR)); _ = writer.join(timeout: 5) }
        if let readError { throw readError }
    }
}
