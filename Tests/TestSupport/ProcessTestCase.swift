// Base class of the process-level suites (EndToEndTests, InteropTests): owns every process, notify
// socket and cleanup a test creates, bounds the test with a watchdog (when it fires, everything the
// test started is killed, which turns any blocked I/O into an error and the test into a failure),
// and on failure appends the captured logs of every process to the XCTest failure, so a CI log
// alone explains what went wrong. The work directory is kept when a test fails.

import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

open class ProcessTestCase: XCTestCase {
    /// Every test is bounded by this.
    open class var testTimeout: TimeInterval { 180 }
    /// The work directory's name: "<prefix>-<test name>-<random>".
    open class var workDirectoryPrefix: String { "vmessd-test" }
    /// How long `terminate` waits after SIGTERM before it kills a process at tearDown.
    open class var terminateGrace: TimeInterval { 5 }

    public private(set) var workDir: URL!
    private var processes: [ManagedProcess] = []
    private var notifySockets: [(name: String, socket: NotifySocket)] = []
    private var cleanups: [() -> Void] = []
    private let stateLock = NSLock()
    private var watchdog: DispatchWorkItem?
    private var watchdogFired = false
    private var serial = 0

    open override func setUpWithError() throws {
        try super.setUpWithError()
        _ = ignoreSIGPIPE
        let short = UUID().uuidString.prefix(8).lowercased()
        // Short: AF_UNIX paths (notify and admin sockets) inside it are limited to 107 bytes.
        let testName = name.components(separatedBy: CharacterSet.alphanumerics.inverted).filter { !$0.isEmpty }.last ?? "test"
        workDir = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("\(Self.workDirectoryPrefix)-\(testName.prefix(24))-\(short)")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        let item = DispatchWorkItem { [weak self] in self?.fireWatchdog() }
        watchdog = item
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.testTimeout, execute: item)
    }

    open override func tearDown() {
        watchdog?.cancel()
        stateLock.lock()
        let fired = watchdogFired
        let procs = processes
        let jobs = cleanups
        processes = []
        cleanups = []
        stateLock.unlock()
        if fired { XCTFail("test exceeded its \(Int(Self.testTimeout)) s bound; all processes were killed") }
        let failed = fired || (testRun?.totalFailureCount ?? 0) > 0
        // Clients before servers (reverse start order), so that servers see clean closes.
        for p in procs.reversed() { p.terminate(grace: Self.terminateGrace) }
        if failed && !procs.isEmpty {
            var states = procs.map { "\($0.name): \($0.lifeDescription)" }.joined(separator: "; ")
            for (name, socket) in notifySockets {
                states += "\n\(name) sd_notify: \(socket.messages.map { $0.replacingOccurrences(of: "\n", with: " | ") })"
            }
            XCTFail("processes: \(states)\nlogs (work dir \(workDir?.path ?? "-") kept):\n" + procs.map { $0.logs() }.joined(separator: "\n"))
        }
        for job in jobs.reversed() { job() }
        if !failed, let dir = workDir { try? FileManager.default.removeItem(at: dir) }
        super.tearDown()
    }

    private func fireWatchdog() {
        stateLock.lock()
        watchdogFired = true
        let procs = processes
        let jobs = cleanups
        stateLock.unlock()
        for p in procs { p.terminate(grace: 1) }
        for job in jobs { job() }
    }

    /// Registers a cleanup that runs in tearDown (and when the watchdog fires). Must be idempotent.
    public func onTearDown(_ job: @escaping () -> Void) {
        stateLock.lock(); cleanups.append(job); stateLock.unlock()
    }

    /// A name for the next process or file: `base` the first time in a test, then `base-N`.
    public func nextName(_ base: String) -> String {
        stateLock.lock(); defer { stateLock.unlock() }
        serial += 1
        return serial == 1 ? base : "\(base)-\(serial)"
    }

    /// Writes `text` to `name` in the work directory; returns its path.
    @discardableResult
    public func writeFile(_ name: String, _ text: String) throws -> String {
        let url = workDir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Starts a process the test owns (stopped at tearDown, its logs attached on failure).
    public func launch(_ name: String, _ executable: String, _ arguments: [String],
                       environment: [String: String] = [:]) throws -> ManagedProcess {
        let p = try ManagedProcess(name: name, executable: executable, arguments: arguments,
                                   environment: environment, logDirectory: workDir)
        stateLock.lock(); processes.append(p); stateLock.unlock()
        return p
    }

    /// A target server on 127.0.0.1, stopped at tearDown.
    public func makeEchoServer(_ mode: EchoServer.Mode = .echo) throws -> EchoServer {
        let server = try EchoServer(mode: mode)
        onTearDown { server.stop() }
        return server
    }

    /// A NOTIFY_SOCKET in the work directory, closed at tearDown; its messages go into a failure.
    public func makeNotifySocket(_ name: String) throws -> NotifySocket {
        let notify = try NotifySocket(path: workDir.appendingPathComponent("\(name).notify").path)
        onTearDown { notify.close() }
        stateLock.lock(); notifySockets.append((name, notify)); stateLock.unlock()
        return notify
    }

    /// Polls `condition` until it holds (bounded); the failure message says what was awaited.
    public func eventually(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: Error?
        while Date() < deadline {
            do {
                if try condition() { return }
            } catch {
                lastError = error
            }
            usleep(100_000)
        }
        throw HarnessError("timed out after \(Int(timeout)) s waiting for: \(what)\(lastError.map { " (last error: \($0))" } ?? "")")
    }
}
