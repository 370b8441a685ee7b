// A child process owned by one test, with stdout/stderr captured to files in the test's temp
// directory. The child leads its own process group, so `terminate()` can finish with a SIGKILL to
// the whole group — that also reaps workers a supervisor spawned and left behind.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class ManagedProcess {
    public let name: String
    public let executable: String
    public let arguments: [String]
    public let stdoutURL: URL
    public let stderrURL: URL
    /// The child's pid; it leads its own process group.
    public let pid: Int32
    private let lock = NSLock()
    private var waitStatus: Int32?
    private var terminated = false
    /// What the process was doing when the harness came to stop it ("running" or how it had ended).
    private(set) var stateAtTermination: String?

    /// Variables a test runner may have inherited from systemd; a child must not act on them.
    public static let scrubbedEnvironment = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                      "WATCHDOG_USEC", "WATCHDOG_PID"]

    /// posix_spawn, not Foundation.Process: the harness reaps its children itself (waitpid on their
    /// pid), which Foundation's child monitoring did not always do (a `vmessd ctl` child stayed a
    /// zombie while a systemd-socket-activate child ran).
    public init(name: String, executable: String, arguments: [String], environment: [String: String] = [:],
         logDirectory: URL) throws {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        stdoutURL = logDirectory.appendingPathComponent("\(name).stdout.log")
        stderrURL = logDirectory.appendingPathComponent("\(name).stderr.log")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw SocketError.unexpected("\(name): \(executable) is not an executable file")
        }
        var env = ProcessInfo.processInfo.environment
        for key in Self.scrubbedEnvironment { env.removeValue(forKey: key) }
        env.merge(environment) { _, new in new }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of the test runner's: a descriptor some test holds without close-on-exec
        // would otherwise count against the child's limits (ResourceLimitTests gives vmessd 64 in
        // all, and once failed in a full run because the supervisor had too few left to start).
        // (glibc 2.34+; Swift's Glibc module does not declare it, so it is looked up.)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (so terminate() can reach whatever it spawned), default signals and an
        // empty mask (the test runner may block some).
        posix_spawnattr_setpgroup(&attributes, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SocketError.call("posix_spawn(\(executable))", rc) }
        pid = child
    }

    deinit { terminate() }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    /// Reaps the child if it has exited (never blocks).
    private func poll() {
        lock.lock(); defer { lock.unlock() }
        guard waitStatus == nil else { return }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { waitStatus = status }
        if r < 0 && errno == ECHILD { waitStatus = waitStatus ?? 0 }
    }

    public var isRunning: Bool {
        poll()
        lock.lock(); defer { lock.unlock() }
        return waitStatus == nil
    }

    private var decoded: (exited: Bool, code: Int32)? {
        poll()
        lock.lock(); defer { lock.unlock() }
        guard let status = waitStatus else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (true, (status >> 8) & 0xff) : (false, signal)
    }

    /// The exit status once the process exited normally (nil while running or when killed by a signal).
    public var exitStatus: Int32? {
        guard let d = decoded, d.exited else { return nil }
        return d.code
    }

    /// "exited with status N" / "killed by signal N" / "running".
    public var exitDescription: String {
        guard let d = decoded else { return "running" }
        return d.exited ? "exited with status \(d.code)" : "killed by signal \(d.code)"
    }

    /// For logs: whether the process died on its own or was stopped by the harness.
    public var lifeDescription: String {
        switch stateAtTermination {
        case nil: return exitDescription
        case "running"?: return "ran until the harness stopped it, then \(exitDescription)"
        case let early?: return "\(early) BEFORE the harness stopped it"
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL to the process group. Idempotent; bounded.
    public func terminate(grace: TimeInterval = 5) {
        if terminated { return }
        terminated = true
        stateAtTermination = exitDescription
        guard pid > 0 else { return }
        if isRunning {
            kill(pid, SIGTERM)
            waitForExit(timeout: grace)
        }
        if isRunning {
            kill(-pid, SIGKILL)
            waitForExit(timeout: 5)
        }
        // Leftover members of the group (e.g. workers of a supervisor that died first).
        kill(-pid, SIGKILL)
    }

    @discardableResult
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(20_000) }
        return !isRunning
    }

    /// Polls the captured output for `text` (a readiness or error line) — bounded.
    public func waitForOutput(containing text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if output().contains(text) { return true }
            usleep(50_000)
        } while Date() < deadline && isRunning
        return output().contains(text)
    }

    public func output() -> String {
        read(stdoutURL, limit: .max) + read(stderrURL, limit: .max)
    }

    /// The tails of both logs, labelled, for failure messages.
    public func logs(limit: Int = 12_000) -> String {
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

extension ManagedProcess {
    /// Starts a server that is told its port on its command line, on a free port (`pickPort`), and
    /// returns once that port accepts TCP. A free port can be taken by someone else before the
    /// server binds it (and a UDP port picked free may be busy for TCP): then up to `attempts`
    /// other ports are tried. `launch` gets the port and the attempt number.
    public static func startOnFreePort(_ server: String, attempts: Int = 5, pickPort: () throws -> UInt16,
                                       launch: (UInt16, Int) throws -> ManagedProcess) throws -> (port: UInt16, process: ManagedProcess) {
        var failures: [String] = []
        for attempt in 1...attempts {
            let port = try pickPort()
            let process = try launch(port, attempt)
            do {
                try waitForTCPPort(port, timeout: 20, stillAlive: { process.isRunning })
                return (port, process)
            } catch {
                process.terminate(grace: 1)
                let log = (try? String(contentsOf: process.stderrURL, encoding: .utf8)) ?? ""
                failures.append("port \(port): \(process.exitDescription) \(log)")
            }
        }
        throw HarnessError("\(server) did not start: \(failures.joined(separator: "; "))")
    }
}
