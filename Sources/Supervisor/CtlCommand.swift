// `vmessd ctl`: talks to a running supervisor over its admin socket (see AdminSocket.swift).
//
//   vmessd ctl status   generation, workers (pid, generation, state, uptime, connections, restarts), sockets
//   vmessd ctl reload   reload the config; waits for the outcome (exit 1 if the reload failed)
//   vmessd ctl stop     graceful stop (like SIGTERM)
//   vmessd ctl stats    traffic per user, totals, rejected handshakes by reason
//   vmessd ctl users    traffic per user only
//   vmessd ctl users add INBOUND EMAIL [UUID [LEVEL]] | remove INBOUND EMAIL | list INBOUND
//                       runtime users, like the gRPC API's AlterInbound (deploy/RUNBOOK.md "gRPC API")
//   vmessd ctl top      a live view, refreshed every second: workers, traffic rates per inbound, top
//                       users by rate, rejections (q or Ctrl-C quits; CtlCommand+Top.swift)
//   vmessd ctl upgrade  start the binary now installed at the running one's path on the same sockets;
//                       waits for the outcome (exit 1 if the new binary failed and the old one serves on)
//
// --json prints the supervisor's response as it is (for scripts and tests).

import ArgumentParser
import Foundation
import Glibc
import Shared

struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Control a running vmessd: status, reload, stop, stats, users, top, upgrade."
    )

    /// The admin socket's commands, and `top` (made of `status` and `stats`).
    static let actions = AdminRequest.Command.allCases.map(\.rawValue) + ["top"]

    @Option(help: "Admin socket path (default: as `vmessd run` picks it, or the config's vmessd.control with -c).")
    var control: String?

    @Option(name: [.short, .customLong("config")], help: "Config file whose vmessd.control names the admin socket.")
    var configFile: String?

    @Flag(help: "Print the raw JSON response.")
    var json = false

    @Option(help: "Seconds to wait for the answer (a reload or an upgrade waits for the new workers).")
    var timeout: Double = 120

    @Argument(help: "One of: status, reload, stop, stats, users, top, upgrade.")
    var action: String

    @Argument(help: "users: add INBOUND EMAIL [UUID [LEVEL]], remove INBOUND EMAIL, list INBOUND.")
    var arguments: [String] = []

    func validate() throws {
        guard Self.actions.contains(action) else {
            throw ValidationError("unknown action \"\(action)\"; expected one of \(Self.actions.joined(separator: ", "))")
        }
        guard arguments.isEmpty || action == AdminRequest.Command.users.rawValue else {
            throw ValidationError("\(action) takes no arguments")
        }
    }

    func run() throws {
        var configured: String?
        if let configFile { configured = try loadConfig(at: configFile).daemon.control }
        let path = AdminSocketPath.resolve(flag: control, config: configured)
        if action == "top" { return try runTop(path: path) }
        let response: AdminResponse
        do {
            response = try Self.exchange(path: path, request: AdminRequest(command: AdminRequest.Command(rawValue: action)!,
                                                                           arguments: arguments.isEmpty ? nil : arguments),
                                         timeout: timeout)
        } catch {
            printError("cannot talk to vmessd at \(path): \(error)")
            throw ExitStatus.runtimeFailure
        }
        if json {
            let data = try JSONEncoder.pretty.encode(response)
            printNow(String(decoding: data, as: UTF8.self))
        } else {
            printNow(Self.render(response))
        }
        if !response.ok { throw ExitStatus.runtimeFailure }
    }

    /// One request, one response.
    static func exchange(path: String, request: AdminRequest, timeout: Double) throws -> AdminResponse {
        let fd = try Posix.connectUnix(path: path)
        defer { try? Posix.close(fd) }
        try Posix.setTimeouts(fd, seconds: timeout)
        try Posix.writeAll(fd: fd, try request.encodedLine())
        let bytes = try Posix.readAll(fd: fd)
        guard !bytes.isEmpty else { throw ReloadError(description: "the supervisor closed the connection without answering") }
        return try AdminResponse.decode(bytes)
    }

    // MARK: text

    static func render(_ response: AdminResponse) -> String {
        var lines: [String] = []
        if let status = response.status {
            lines.append("vmessd pid \(status.pid), \(status.phase), up \(duration(status.uptimeSeconds)), config \(status.config)")
            lines.append("status: \(status.statusText)")
            if let last = status.lastReload { lines.append("last reload: \(last)") }
            lines.append("")
            lines.append(table(["WORKER", "PID", "GEN", "STATE", "UPTIME", "CONNS", "ACCEPTED", "REJECTED", "RESTARTS"],
                               status.workers.map { w in
                                   ["\(w.index)", "\(w.pid)", "\(w.generation)", w.state, duration(w.uptimeSeconds),
                                    "\(w.connections)", "\(w.accepted)", "\(w.rejected)", "\(w.restarts)"]
                               }))
            let troubled = status.slots.filter { $0.crashLoop || $0.nextRestartIn != nil }
            for slot in troubled {
                var line = "worker \(slot.index): \(slot.crashLoop ? "CRASH LOOP, " : "")\(slot.restarts) restarts, last exit \(slot.lastExit ?? "-")"
                if let next = slot.nextRestartIn { line += ", restart in \(next)s" }
                lines.append(line)
            }
            lines.append("")
            lines.append(table(["INBOUND", "ADDRESS", "SOCKETS", "ORIGIN"], status.listeners.map {
                [$0.inbound, $0.address, "\($0.sockets)", $0.activated ? "systemd" : "vmessd"]
            }))
        } else if let stats = response.stats {
            lines.append("accepted \(stats.accepted), up \(bytes(stats.bytesUp)), down \(bytes(stats.bytesDown)), "
                         + "worker restarts \(stats.workerRestarts), reloads \(stats.reloads)")
            if !stats.rejected.isEmpty {
                lines.append("rejected: " + stats.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            if let up = stats.inboundsUp, !up.isEmpty {
                lines.append("")
                lines.append(table(["INBOUND", "UP", "DOWN"], up.keys.sorted().map { [$0, bytes(up[$0]!), bytes(stats.inboundsDown?[$0] ?? 0)] }))
            }
            lines.append("")
            if stats.users.contains(where: { $0.open != nil }) {
                lines.append(table(["USER", "UP", "DOWN", "OPEN", "ADDRESSES"], stats.users.map {
                    [$0.user, bytes($0.up), bytes($0.down), $0.open.map(String.init) ?? "-", ($0.addresses ?? []).joined(separator: " ")]
                }))
            } else {
                lines.append(table(["USER", "UP", "DOWN"], stats.users.map { [$0.user, bytes($0.up), bytes($0.down)] }))
            }
        } else if let users = response.users {
            lines.append(table(["EMAIL", "ID", "LEVEL", "ALTERID"], users.map { [$0.email ?? "-", $0.id, "\($0.level)", "\($0.alterId)"] }))
        } else {
            lines.append(response.message)
        }
        if (response.status != nil || response.stats != nil) && !response.ok { lines.insert(response.message, at: 0) }
        return lines.joined(separator: "\n")
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86400)d\(s % 86400 / 3600)h"
    }

    static func bytes(_ n: UInt64) -> String { scaledBytes(Double(n)) }

    /// "512 B", "1.5 KiB", … with `suffix` after the unit ("/s" for a rate).
    static func scaledBytes(_ amount: Double, suffix: String = "") -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = amount
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B\(suffix)" : String(format: "%.1f %@%@", value, units[unit], suffix)
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
