// Base class of the end-to-end tests: starts the real `vmessd` (from the build directory) with a
// test-owned NOTIFY_SOCKET and admin socket, the reference v2ray client in front of it and echo
// servers behind it. Owning the processes, the watchdog and the logs on failure are
// ProcessTestCase's (TestSupport).

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

struct VMessTestUser {
    var id: String = UUID().uuidString.lowercased()
    var email: String
    var security = "aes-128-gcm"

    init(_ email: String) { self.email = email }

    var serverJSON: [String: Any] { ["id": id, "alterId": 0, "email": email] }
    var clientJSON: [String: Any] { ["id": id, "alterId": 0, "security": security] }
}

struct VMessdServer {
    let process: ManagedProcess
    let notify: NotifySocket
    let control: String
    let configPath: String
    let port: UInt16
    var pid: pid_t { process.pid }
}

struct V2RayClient {
    let process: ManagedProcess
    let port: UInt16
}

class EndToEndTestCase: ProcessTestCase {
    override class var workDirectoryPrefix: String { "vmessd-e2e" }
    override class var terminateGrace: TimeInterval { 3 }
    static let startupTimeout: TimeInterval = 30

    // MARK: configs

    static func json(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `daemon`: a top-level "vmessd" object (limits and the like), when given; `extra`: top-level
    /// sections that replace the defaults (outbounds, routing, ...).
    static func serverConfig(port: UInt16, users: [VMessTestUser], tag: String = "vmess-in",
                             daemon: [String: Any]? = nil, extra: [String: Any] = [:]) -> String {
        var object: [String: Any] = [
            "log": ["loglevel": "info"],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": tag,
                "settings": ["clients": users.map(\.serverJSON)],
            ]],
            "outbounds": [["protocol": "freedom", "settings": [String: Any]()]],
        ]
        if let daemon { object["vmessd"] = daemon }
        object.merge(extra) { _, new in new }
        return json(object)
    }

    // MARK: peers

    /// `vmessd run -c FILE --workers N --drain-timeout S --control PATH` with NOTIFY_SOCKET; waits for
    /// READY=1 (sent once every worker reported ready). `prefix` runs it under another program
    /// (systemd-socket-activate), `trigger` is called before waiting (to make that program start it).
    func startVMessd(users: [VMessTestUser], workers: Int = 2, drainTimeout: Double = 30, port: UInt16? = nil,
                     prefix: [String] = [], environment: [String: String] = [:], waitForReady: Bool = true,
                     daemon: [String: Any]? = nil, extra: [String: Any] = [:],
                     trigger: ((UInt16) throws -> Void)? = nil) throws -> VMessdServer {
        let port = try port ?? FreePort.tcp()
        return try startVMessd(config: Self.serverConfig(port: port, users: users, daemon: daemon, extra: extra), port: port,
                               workers: workers, drainTimeout: drainTimeout, prefix: prefix, environment: environment,
                               waitForReady: waitForReady, trigger: trigger)
    }

    /// The same with a whole config text; `port` is the one the config's first inbound listens on.
    /// `workers` nil: no --workers flag (the config's `vmessd.workers` decides, and a reload may change it).
    func startVMessd(config: String, port: UInt16, workers: Int? = 2, drainTimeout: Double = 30, prefix: [String] = [],
                     environment: [String: String] = [:], waitForReady: Bool = true, executable: String? = nil,
                     trigger: ((UInt16) throws -> Void)? = nil) throws -> VMessdServer {
        let name = nextName("vmessd")
        let configPath = try writeFile("\(name).json", config)
        let control = workDir.appendingPathComponent("\(name).ctl").path
        let notify = try makeNotifySocket(name)
        let vmessd = try executable ?? VMessdBinaries.vmessd()
        let arguments = ["run", "-c", configPath] + (workers.map { ["--workers", "\($0)"] } ?? [])
            + ["--drain-timeout", "\(drainTimeout)", "--control", control]
        var env = environment
        env["NOTIFY_SOCKET"] = notify.path
        let process = prefix.isEmpty
            ? try launch(name, vmessd, arguments, environment: env)
            : try launch(name, prefix[0], Array(prefix.dropFirst()) + [vmessd] + arguments, environment: env)
        let server = VMessdServer(process: process, notify: notify, control: control, configPath: configPath, port: port)
        try trigger?(port)
        if waitForReady {
            guard notify.waitFor("READY=1", timeout: Self.startupTimeout, stillAlive: { process.isRunning }) else {
                throw HarnessError("\(name) (\(process.exitDescription)) sent no READY=1 within \(Int(Self.startupTimeout)) s (got \(notify.messages))")
            }
        }
        return server
    }

    /// A stand-in for vmessd-worker (pass it as VMESSD_WORKER): a shell script that runs `prelude`
    /// (which may exit, or exec the real worker its own way) and otherwise execs the real worker
    /// with the arguments and descriptors it was given.
    func workerWrapper(_ prelude: String) throws -> String {
        let wrapper = try writeFile(nextName("worker") + ".sh", """
            #!/bin/sh
            \(prelude)
            exec "\(try VMessdBinaries.worker())" "$@"

            """)
        chmod(wrapper, 0o755)
        return wrapper
    }

    /// Creates `marker` (a worker wrapper's switch, see `workerWrapper`) and kills worker 0, so that
    /// its respawns meet whatever the marker switches on. Returns the killed worker and worker 1.
    func killWorkerZero(after marker: String, _ server: VMessdServer) throws -> (victim: AdminStatus.Worker, other: AdminStatus.Worker) {
        let before = try status(server)
        let victim = try XCTUnwrap(before.workers.first { $0.index == 0 })
        let other = try XCTUnwrap(before.workers.first { $0.index == 1 })
        XCTAssertTrue(FileManager.default.createFile(atPath: marker, contents: nil))
        XCTAssertEqual(kill(victim.pid, SIGKILL), 0)
        return (victim, other)
    }

    /// The reference client: dokodemo-door on a free port to targetAddress:targetPort through `server`,
    /// with the outbound's `streamSettings` when given (ws, tls, domainsocket, …).
    func startClient(serverPort: UInt16, user: VMessTestUser, targetPort: UInt16,
                     targetAddress: String = "127.0.0.1", stream: [String: Any]? = nil,
                     sendThrough: String? = nil) throws -> V2RayClient {
        let v2ray = try Tool.v2ray()
        let port = try FreePort.tcp()
        let name = nextName("v2ray")
        let config = Self.json([
            "log": ["loglevel": "warning"],
            // Generous timers: the tests check data, not a debug build's latency under load.
            "policy": ["levels": ["0": ["handshake": 10, "connIdle": 300, "uplinkOnly": 20, "downlinkOnly": 20]]],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                "settings": ["address": targetAddress, "port": Int(targetPort), "network": "tcp"],
            ]],
            "outbounds": [["protocol": "vmess", "settings": ["vnext": [[
                "address": "127.0.0.1", "port": Int(serverPort), "users": [user.clientJSON],
            ]]], "streamSettings": stream ?? [:]].merging(sendThrough.map { ["sendThrough": $0] } ?? [:]) { $1 }],
        ])
        let path = try writeFile("\(name).json", config)
        let process = try launch(name, v2ray, ["-config", path])
        try waitForTCPPort(port, timeout: Self.startupTimeout, stillAlive: { process.isRunning })
        return V2RayClient(process: process, port: port)
    }

    // MARK: vmessd ctl

    /// Runs a program to completion (bounded), capturing its output.
    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
             timeout: TimeInterval = 60) throws -> ToolResult {
        try runTool(executable, arguments, environment: environment, timeout: timeout)
    }

    /// `vmessd ctl --control PATH --json ACTION`, decoded.
    func ctl(_ server: VMessdServer, _ action: String) throws -> (status: Int32, response: AdminResponse) {
        let result = try run(try VMessdBinaries.vmessd(), ["ctl", "--control", server.control, "--json", action])
        do {
            return (result.status, try AdminResponse.decode(Array(result.stdout.utf8)))
        } catch {
            throw HarnessError("vmessd ctl \(action): exit \(result.status), no JSON answer: \(result.stdout) \(result.stderr)")
        }
    }

    func status(_ server: VMessdServer) throws -> AdminStatus {
        let (code, response) = try ctl(server, "status")
        guard code == 0, let status = response.status else { throw HarnessError("vmessd ctl status failed: \(response.message)") }
        return status
    }

    func stats(_ server: VMessdServer) throws -> AdminStats {
        let (code, response) = try ctl(server, "stats")
        guard code == 0, let stats = response.stats else { throw HarnessError("vmessd ctl stats failed: \(response.message)") }
        return stats
    }

    /// Whether a process is alive (a reaped worker no longer exists; an orphan whose new parent has
    /// not reaped it yet is a zombie, which counts as gone).
    static func exists(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 || errno != ESRCH else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }
}

extension NotifySocket {
    /// How many datagrams contained the line `assignment`.
    func count(_ assignment: String) -> Int {
        messages.filter { $0.split(separator: "\n").contains(Substring(assignment)) }.count
    }

    /// Every STATUS= text, in order.
    var statuses: [String] {
        messages.flatMap { $0.split(separator: "\n") }.filter { $0.hasPrefix("STATUS=") }.map { String($0.dropFirst(7)) }
    }

    /// Waits until `assignment` has been seen at least `count` times; bounded.
    func waitForCount(_ assignment: String, atLeast count: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if self.count(assignment) >= count { return true }
            usleep(20_000)
        }
        return self.count(assignment) >= count
    }
}
