// Traffic for the end-to-end tests, through the reference client's dokodemo-door to an echo server:
// a stream of short connections (each one a fresh VMess connection through vmessd) and long-lived
// streams that keep exchanging chunks, every byte checked. Both record the first thing that went
// wrong instead of throwing, so a test can look at them after the event (a reload, a kill).

import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Short connections in a loop on `threads` threads: connect, send 1-32 KiB, half-close, read the
/// echo back, compare, close.
final class ShortConnectionLoad {
    private let port: UInt16
    private let lock = NSLock()
    private var stopped = false
    private var successes = 0
    private var failures: [String] = []
    private var tasks: [BackgroundTask<Void>] = []

    init(port: UInt16, threads: Int = 2) {
        self.port = port
        for t in 0..<threads {
            tasks.append(BackgroundTask("short-load-\(t)") { [self] in loop(t) })
        }
    }

    var snapshot: (successes: Int, failures: [String]) {
        lock.lock(); defer { lock.unlock() }
        return (successes, failures)
    }

    /// Stops the threads (each finishes its current connection) and returns the totals.
    func stop() -> (successes: Int, failures: [String]) {
        lock.lock(); stopped = true; lock.unlock()
        for task in tasks { _ = task.join(timeout: 60) }
        return snapshot
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    private func loop(_ thread: Int) {
        var n = 0
        while !isStopped {
            n += 1
            let label = "short connection \(thread).\(n)"
            do {
                try Self.roundTrip(port: port, payload: randomData(Int.random(in: 1_000...32_000)), label: label)
                lock.lock(); successes += 1; lock.unlock()
            } catch {
                lock.lock(); failures.append("\(label) at \(Self.now()): \(error)"); lock.unlock()
            }
        }
    }

    static func now() -> String {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss.SSS"
        return f.string(from: Date())
    }

    /// One echo round trip on a new connection (payloads small enough for the socket buffers, so no
    /// writer thread is needed).
    static func roundTrip(port: UInt16, payload: Data, label: String, timeout: TimeInterval = 30) throws {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(timeout)
        try Sock.writeAll(fd, payload, deadline: deadline, what: "\(label): upload")
        shutdown(fd, Int32(SHUT_WR))
        let received = try Sock.read(fd, count: payload.count, deadline: deadline, what: "\(label): echo")
        if received.eof && received.data.count < payload.count {
            throw HarnessError("\(label): closed after \(received.data.count) of \(payload.count) echoed bytes")
        }
        if let mismatch = describeMismatch(expected: payload, actual: received.data) {
            throw HarnessError("\(label): echoed data differs: \(mismatch)")
        }
    }
}

/// One long-lived connection exchanging chunks (1-8 KiB, every 20 ms) until stopped; each chunk's echo
/// is checked byte for byte before the next is sent.
final class LongStream {
    let label: String
    private let fd: Int32
    private let lock = NSLock()
    private var stopped = false
    private var rounds = 0
    private var bytes = 0
    private var failure: String?
    private var task: BackgroundTask<Void>!

    init(port: UInt16, label: String) throws {
        self.label = label
        fd = try Sock.connect(port: port)
        Sock.setTimeouts(fd, seconds: 0.25)
        task = BackgroundTask("stream-\(label)") { [self] in loop() }
    }

    deinit { _ = stop() }

    var state: (rounds: Int, bytes: Int, failure: String?) {
        lock.lock(); defer { lock.unlock() }
        return (rounds, bytes, failure)
    }

    /// Waits until `count` more rounds succeeded (or the stream failed); bounded.
    func waitForRounds(_ count: Int, timeout: TimeInterval = 30) -> Bool {
        let target = state.rounds + count
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let s = state
            if s.failure != nil { return false }
            if s.rounds >= target { return true }
            usleep(20_000)
        }
        return false
    }

    /// Stops exchanging, half-closes and expects the far end to close in turn (the echo server does
    /// after our EOF): a stream that ends cleanly, not one that was cut.
    func stop() -> (rounds: Int, bytes: Int, failure: String?) {
        lock.lock()
        let already = stopped
        stopped = true
        lock.unlock()
        if already { return state }
        _ = task?.join(timeout: 60)
        if state.failure == nil {
            shutdown(fd, Int32(SHUT_WR))
            do {
                let rest = try Sock.read(fd, count: 1, deadline: Date().addingTimeInterval(20), what: "\(label): end of stream")
                if !rest.eof { record("\(label): unexpected bytes after the last echo") }
            } catch {
                record("\(label): no clean end of stream: \(error)")
            }
        }
        close(fd)
        return state
    }

    /// Gives up on a stream that is known to be broken: unblocks its thread, closes.
    func abort() {
        lock.lock()
        let already = stopped
        stopped = true
        lock.unlock()
        if already { return }
        shutdown(fd, Int32(SHUT_RDWR))
        _ = task?.join(timeout: 10)
        close(fd)
    }

    private func record(_ text: String) {
        lock.lock()
        if failure == nil { failure = "\(text) (at \(ShortConnectionLoad.now()))" }
        lock.unlock()
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    private func loop() {
        while !isStopped {
            let chunk = randomData(Int.random(in: 1_000...8_000))
            do {
                let deadline = Date().addingTimeInterval(30)
                try Sock.writeAll(fd, chunk, deadline: deadline, what: "\(label): chunk")
                let echo = try Sock.read(fd, count: chunk.count, deadline: deadline, what: "\(label): echo")
                if echo.eof { throw HarnessError("\(label): closed by the far end after \(state.rounds) rounds") }
                if let mismatch = describeMismatch(expected: chunk, actual: echo.data) {
                    throw HarnessError("\(label): echo differs: \(mismatch)")
                }
                lock.lock(); rounds += 1; bytes += chunk.count; lock.unlock()
            } catch {
                record("\(error)")
                return
            }
            usleep(20_000)
        }
    }
}
