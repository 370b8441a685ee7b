// Base class of the interop tests: the server under test (vmessd or, to check the harness, v2ray),
// the reference client and target servers. Owning the processes, the watchdog and the logs on
// failure are ProcessTestCase's (TestSupport).

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Which VMess server a test talks to. `.v2ray` (the reference) exists to validate the harness: a test
/// that passes against `.v2ray` and fails against `.vmessd` is a vmessd bug, not a harness bug.
enum ServerKind: String {
    case vmessd, v2ray

    /// The server the "vmessd" tests use: vmessd, unless `INTEROP_SERVER=v2ray` (whole-harness
    /// self-check: `INTEROP_SERVER=v2ray swift test --filter InteropTests`).
    static var underTest: ServerKind {
        ProcessInfo.processInfo.environment["INTEROP_SERVER"].flatMap(ServerKind.init(rawValue:)) ?? .vmessd
    }
}

enum ServerConfigFormat { case v4, v5 }

struct RunningServer {
    let kind: ServerKind
    let port: UInt16
    let process: ManagedProcess
    /// vmessd's admin socket (`vmessd ctl --control`); nil for v2ray.
    var control: String? = nil
}

struct RunningClient {
    let dokodemoPort: UInt16
    let socksPort: UInt16
    let process: ManagedProcess
}

class InteropTestCase: ProcessTestCase {
    override class var testTimeout: TimeInterval { 120 }
    override class var workDirectoryPrefix: String { "vmessd-interop" }
    /// Per data transfer.
    static let transferTimeout: TimeInterval = 60
    static let startupTimeout: TimeInterval = 20

    private(set) var v2rayPath = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        v2rayPath = try Tool.v2ray()
    }

    func makeUDPEchoServer(respond: (([UInt8]) -> [UInt8])? = nil) throws -> UDPEchoServer {
        let server = try UDPEchoServer(respond: respond)
        onTearDown { server.stop() }
        return server
    }

    func waitUntilListening(_ process: ManagedProcess, port: UInt16, timeout: TimeInterval = InteropTestCase.startupTimeout) throws {
        do {
            try waitForTCPPort(port, timeout: timeout, stillAlive: { process.isRunning })
        } catch {
            throw HarnessError("\(process.name) (\(process.exitDescription)) is not listening on 127.0.0.1:\(port): \(error) — its logs follow below")
        }
    }

    // MARK: - peers

    /// Starts the VMess server: `vmessd run -c FILE --workers 2` or `v2ray -config FILE`.
    func startServer(_ kind: ServerKind = .underTest, users: [VMessTestUser],
                     format: ServerConfigFormat = .v4, daemon: [String: Any]? = nil) throws -> RunningServer {
        let port = try FreePort.tcp()
        let config: String
        switch format {
        case .v4: config = TestConfigs.serverV4(port: port, users: users, daemon: kind == .vmessd ? daemon : nil)
        case .v5:
            guard kind == .vmessd else { throw XCTSkip("v2ray 4.34 cannot read the v5 config format") }
            config = TestConfigs.serverV5(port: port, uuids: users.map(\.id))
        }
        return try startServer(kind, port: port, config: config)
    }

    /// Starts the server under test with a config of the test's own, whose VMess inbound is on `port`.
    func startServer(_ kind: ServerKind, port: UInt16, config: String) throws -> RunningServer {
        let name = nextName("server-\(kind.rawValue)")
        let path = try writeFile("\(name).json", config)
        let process: ManagedProcess
        var controlPath: String?
        switch kind {
        case .vmessd:
            let control = workDir.appendingPathComponent("\(name).ctl").path
            controlPath = control
            let notify = try makeNotifySocket(name)
            process = try launch(name, try VMessdBinaries.vmessd(),
                                 ["run", "-c", path, "--workers", "2", "--control", control],
                                 environment: ["NOTIFY_SOCKET": notify.path])
            // Readiness = the supervisor's READY=1 (its sockets accept before any worker serves them).
            guard notify.waitFor("READY=1", timeout: Self.startupTimeout, stillAlive: { process.isRunning }) else {
                throw HarnessError("\(name) (\(process.exitDescription)) sent no READY=1 on NOTIFY_SOCKET within \(Int(Self.startupTimeout)) s (got: \(notify.messages)) — its logs follow below")
            }
        case .v2ray:
            process = try launch(name, v2rayPath, ["-config", path])
        }
        try waitUntilListening(process, port: port)
        return RunningServer(kind: kind, port: port, process: process, control: controlPath)
    }

    /// Starts the reference v2ray client pointed at `server`, with a dokodemo-door to 127.0.0.1:targetPort.
    func startClient(server: RunningServer, user: VMessTestUser, targetPort: UInt16) throws -> RunningClient {
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let name = nextName("client-v2ray")
        let config = TestConfigs.v2rayClient(dokodemoPort: dokodemo, targetPort: targetPort, socksPort: socks,
                                             serverPort: server.port, user: user)
        let path = try writeFile("\(name).json", config)
        let process = try launch(name, v2rayPath, ["-config", path])
        // socks is the last inbound: once it accepts, the dokodemo-door does too (see TestConfigs).
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: dokodemo, socksPort: socks, process: process)
    }

    /// Fails early with a clear message if a peer died during the test.
    func assertRunning(_ processes: ManagedProcess..., file: StaticString = #filePath, line: UInt = #line) {
        for p in processes where !p.isRunning {
            XCTFail("\(p.name) is no longer running (\(p.exitDescription))", file: file, line: line)
        }
    }

    // MARK: - transfers

    /// Sends `payload` on a new connection to 127.0.0.1:port from a writer thread (then half-closes),
    /// reads back `payload.count` bytes concurrently and compares them byte for byte.
    func echoRoundTrip(port: UInt16, payload: Data, label: String, timeout: TimeInterval = InteropTestCase.transferTimeout) throws {
        let fd = try Sock.connect(port: port)
        try echoRoundTrip(fd: fd, payload: payload, label: label, timeout: timeout)
    }

    /// As above on an already connected socket; closes `fd`.
    func echoRoundTrip(fd: Int32, payload: Data, label: String, timeout: TimeInterval = InteropTestCase.transferTimeout) throws {
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(timeout)
        let writer = BackgroundTask<Void>("writer-\(label)") {
            try Sock.writeAll(fd, payload, deadline: deadline, what: "\(label): upload")
            Glibc.shutdown(fd, Int32(SHUT_WR))
        }
        let received: (data: Data, eof: Bool)
        do {
            received = try Sock.read(fd, count: payload.count, deadline: deadline, what: "\(label): echo")
        } catch {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            let w = writer.join(timeout: 5)
            throw HarnessError("\(label): \(error) [writer: \(Self.describe(w))]")
        }
        if received.eof {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            let w = writer.join(timeout: 5)
            throw HarnessError("\(label): connection closed after \(received.data.count) of \(payload.count) echoed bytes [writer: \(Self.describe(w))]")
        }
        if let mismatch = describeMismatch(expected: payload, actual: received.data) {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            _ = writer.join(timeout: 5)
            throw HarnessError("\(label): echoed data differs: \(mismatch)")
        }
        guard let w = writer.join(timeout: max(1, deadline.timeIntervalSinceNow)) else {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            _ = writer.join(timeout: 5)
            throw HarnessError("\(label): writer did not finish")
        }
        try w.get()
    }

    /// One short echo on `fd`, which stays open (a connection that is known to be carried).
    func echoOnce(_ fd: Int32, label: String, timeout: TimeInterval = 10) throws {
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(timeout)
        let probe = Data("hello \(label)".utf8)
        try Sock.writeAll(fd, probe, deadline: deadline, what: label)
        let got = try Sock.read(fd, count: probe.count, deadline: deadline, what: label)
        guard got.data == probe else { throw HarnessError("\(label): echo differs (\(got.data.count) bytes, eof \(got.eof))") }
    }

    /// Echo without a half-close before the echo is complete, for clients that drop a connection's
    /// downstream as soon as its local side closes: V2Ray's mux client (the reference server behaves
    /// the same way) and sing-box's gRPC client. The socket closes only after everything came back.
    func echoThenClose(port: UInt16, payload: Data, label: String) throws {
        try echoThenClose(fd: try Sock.connect(port: port), payload: payload, label: label)
    }

    /// As above on an already connected socket; closes `fd`.
    func echoThenClose(fd: Int32, payload: Data, label: String) throws {
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(Self.transferTimeout)
        let writer = BackgroundTask<Void>("writer-\(label)") {
            try Sock.writeAll(fd, payload, deadline: deadline, what: "\(label): upload")
        }
        let received = try Sock.read(fd, count: payload.count, deadline: deadline, what: "\(label): echo")
        guard let w = writer.join(timeout: max(1, deadline.timeIntervalSinceNow)) else {
            throw HarnessError("\(label): writer did not finish")
        }
        try w.get()
        if let mismatch = describeMismatch(expected: payload, actual: received.data) {
            throw HarnessError("\(label): echoed data differs: \(mismatch) (eof: \(received.eof))")
        }
    }

    /// Waits for every task (each up to the transfer timeout): one line per task that failed or hung.
    func failures(of tasks: [BackgroundTask<Void>], name: String = "flow") -> [String] {
        var failures: [String] = []
        for (i, task) in tasks.enumerated() {
            switch task.join(timeout: Self.transferTimeout + 10) {
            case nil: failures.append("\(name) \(i): still running")
            case .failure(let e)?: failures.append("\(e)")
            case .success?: break
            }
        }
        return failures
    }

    static func describe(_ r: Result<Void, Error>?) -> String {
        switch r {
        case nil: return "still running"
        case .success?: return "finished"
        case .failure(let e)?: return "failed: \(e)"
        }
    }
}
