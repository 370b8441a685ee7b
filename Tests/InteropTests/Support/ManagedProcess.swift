// A child process owned by one test: Foundation.Process with stdout/stderr captured to files in the
// test's temp directory. Foundation starts the child as the leader of its own process group, so
// `terminate()` can finish with a SIGKILL to the whole group — that also reaps workers a supervisor
// spawned and left behind.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ManagedProcess {
    let name: String
    let executable: String
    let arguments: [String]
    let stdoutURL: URL
    let stderrURL: URL
    private let process = Process()
    private var terminated = false
    /// What the process was doing when the harness came to stop it ("running" or how it had ended).
    private(set) var stateAtTermination: String?

    /// Variables a test runner may have inherited from systemd; a child must not act on them.
    static let scrubbedEnvironment = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                      "WATCHDOG_USEC", "WATCHDOG_PID"]

    init(name: String, executable: String, arguments: [String], environment: [String: String] = [:],
         logDirectory: URL) throws {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        stdoutURL = logDirectory.appendingPathComponent("\(name).stdout.log")
        stderrURL = logDirectory.appendingPathComponent("\(name).stderr.log")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SocketError.unexpected("\(name): \(executable) is not an executable file")
        }
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: stdoutURL)
        let err = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? out.close()
            try? err.close()
        }

        var env = ProcessInfo.processInfo.environment
        for key in Self.scrubbedEnvironment { env.removeValue(forKey: key) }
        env.merge(environment) { _, new in new }

        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = env
        process.currentDirectoryURL = logDirectory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    deinit { terminate() }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// "exited with status N" / "killed by signal N" / "running".
    var exitDescription: String {
        if process.isRunning { return "running" }
        switch process.terminationReason {
        case .exit: return "exited with status \(process.terminationStatus)"
        case .uncaughtSignal: return "killed by signal \(process.terminationStatus)"
        @unknown default: return "ended (\(process.terminationStatus))"
        }
    }

    /// For logs: whether the process died on its own or was stopped by the harness.
    var lifeDescription: String {
        switch stateAtTermination {
        case nil: return exitDescription
        case "running"?: return "ran until the harness stopped it, then \(exitDescription)"
        case let early?: return "\(early) BEFORE the harness stopped it"
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL to the process group. Idempotent; bounded.
    func terminate(grace: TimeInterval = 5) {
        if terminated { return }
        terminated = true
        stateAtTermination = exitDescription
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        if process.isRunning {
            kill(pid, SIGTERM)
            waitForExit(timeout: grace)
        }
        if process.isRunning {
            kill(-pid, SIGKILL)
            waitForExit(timeout: 5)
        }
        // Leftover members of the group (e.g. workers of a supervisor that died first).
        kill(-pid, SIGKILL)
    }

    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    /// Polls the captured output for `text` (a readiness or error line) — bounded.
    func waitForOutput(containing text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if output().contains(text) { return true }
            usleep(50_000)
        } while Date() < deadline && process.isRunning
        return output().contains(text)
    }

    func output() -> String {
        read(stdoutURL, limit: .max) + read(stderrURL, limit: .max)
    }

    /// The tails of both logs, labelled, for failure messages.
    func logs(limit: Int = 12_000) -> String {
        """
        ----- \(name) [pid \(pid), \(lifeDescription)]: \(executable) \(arguments.joined(separator: " "))
        ----- \(name) stdout:
        \(read(stdoutURL, limit: limit))
        ----- \(name) stderr:
        \(read(stderrURL, limit: limit))
        """
    }

    private func read(_ url: URL, limit: Int) -> String {
        guard let data = try? Data(contentsOf: url) else { return "<unreadable>" }
        if data.count <= limit { return String(decoding: data, as: UTF8.self) }
        return "… (\(data.count - limit) bytes omitted)\n" + String(decoding: data.suffix(limit), as: UTF8.self)
    }
}
