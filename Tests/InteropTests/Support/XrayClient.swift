// The real Xray-core as a client, from PyPI's `xray-core` wheel (Python bindings that embed the Go
// core: `xray.startFromJSON(json)`). It is the only Xray build reachable here, and Xray is the client
// that sends UDP as XUDP over Mux.Cool (vmess-protocol.md §10.4), so the XUDP tests need it.
// scripts/install-deps.sh installs it; without it the tests skip (and fail in CI).

import Foundation
import TestSupport
import XCTest

enum XrayClient {
    static let pinned = "xray-core==1.8.26.13"

    /// A Python that can `import xray`, or nil.
    static func python() -> String? {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3", "/root/.pyenv/shims/python3"] + pathPythons() {
            guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: candidate)
            p.arguments = ["-c", "import xray"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return candidate }
        }
        return nil
    }

    private static func pathPythons() -> [String] {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
    }

    static func requirePython() throws -> String {
        if let p = python() { return p }
        let message = "Xray-core for Python is not installed (pip install \(pinned))"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw HarnessError(message + " — required in CI") }
        throw XCTSkip(message)
    }

    /// A runner script: starts Xray from the JSON file in argv[1] and stays up until killed.
    static let runner = """
        import sys, time, xray
        xray.startFromJSON(open(sys.argv[1]).read())
        while True:
            time.sleep(3600)
        """

    /// Client config: dokodemo-door (tcp) to 127.0.0.1:targetPort and a socks5 inbound with UDP, both
    /// through a vmess outbound to 127.0.0.1:serverPort. UDP through socks becomes XUDP (Command 3).
    static func config(dokodemoPort: UInt16, targetPort: UInt16, socksPort: UInt16, serverPort: UInt16,
                       user: VMessTestUser) -> String {
        TestConfigs.json([
            "log": ["loglevel": "info"],
            "inbounds": [
                ["port": Int(dokodemoPort), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                 "settings": ["address": "127.0.0.1", "port": Int(targetPort), "network": "tcp"]],
                ["port": Int(socksPort), "listen": "127.0.0.1", "protocol": "socks",
                 "settings": ["auth": "noauth", "udp": true, "ip": "127.0.0.1"]],
            ],
            "outbounds": [[
                "protocol": "vmess",
                "settings": ["vnext": [["address": "127.0.0.1", "port": Int(serverPort),
                                        "users": [["id": user.id, "security": user.security]]]]],
            ]],
        ])
    }
}

extension InteropTestCase {
    /// The Xray client pointed at `server`: dokodemo-door to 127.0.0.1:targetPort and socks5 with UDP
    /// (sent as XUDP).
    func startXray(server: RunningServer, user: VMessTestUser, targetPort: UInt16) throws -> RunningClient {
        let python = try XrayClient.requirePython()
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let config = try writeFile("xray-client-\(socks).json", XrayClient.config(dokodemoPort: dokodemo, targetPort: targetPort,
                                                                                  socksPort: socks, serverPort: server.port, user: user))
        let script = try writeFile("xray-runner.py", XrayClient.runner)
        let process = try launch("client-xray", python, [script, config])
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: dokodemo, socksPort: socks, process: process)
    }
}
