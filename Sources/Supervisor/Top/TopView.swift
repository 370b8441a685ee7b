// What `vmessd ctl top` shows, as plain lines for a terminal of a given size: pure (two admin
// answers in, text out), so the layout is unit-tested without a terminal. Rates are the difference
// between this refresh's totals and the previous one's over the seconds between them.
//
//   vmessd pid 4242 running, generation 2, up 1h02m, 14 connections
//   traffic up 1.2 MiB/s, down 3.4 MiB/s; accepted 12/s; rejected 0/s
//
//   WORKER  PID    GEN  STATE     CONNS  ACCEPTED  REJECTED
//   ...
//   INBOUND         UP/s       DOWN/s     UP        DOWN
//   ...
//   USER (top by rate)   UP/s   DOWN/s
//   ...
//   rejected: unknown_user 3, replay 1
//   q: quit
//
// Sections give up rows from the bottom when the screen is short (users first, then inbounds, then
// workers); every line is cut to the width.

import Foundation
import Shared

struct TopView {
    struct Sample {
        var status: AdminStatus
        var stats: AdminStats
        /// Monotonic seconds when it was taken.
        var at: Double
    }

    var width: Int
    var height: Int

    func render(_ now: Sample, previous: Sample?) -> [String] {
        let elapsed = previous.map { max(now.at - $0.at, 0.001) }
        func rate(_ current: UInt64, _ before: UInt64?) -> String {
            guard let elapsed, let before else { return "-" }
            return Self.rate(Double(current >= before ? current - before : 0) / elapsed)
        }
        func count(_ current: UInt64, _ before: UInt64?) -> String {
            guard let elapsed, let before else { return "-" }
            return Self.number(Double(current >= before ? current - before : 0) / elapsed) + "/s"
        }
        let s = now.status, t = now.stats, p = previous?.stats
        let rejectedNow = t.rejected.filter { !$0.key.hasPrefix("dropped_") }.values.reduce(UInt64(0), &+)
        let rejectedBefore = p.map { $0.rejected.filter { !$0.key.hasPrefix("dropped_") }.values.reduce(UInt64(0), &+) }

        let head = [
            "vmessd pid \(s.pid) \(s.phase), generation \(s.generation), up \(CtlCommand.duration(s.uptimeSeconds)), \(s.connections) connections",
            "traffic up \(rate(t.bytesUp, p?.bytesUp)), down \(rate(t.bytesDown, p?.bytesDown)); "
                + "accepted \(count(t.accepted, p?.accepted)); rejected \(count(rejectedNow, rejectedBefore))",
        ]
        let workers = [["WORKER", "PID", "GEN", "STATE", "CONNS", "ACCEPTED", "REJECTED"]] + s.workers.map { w in
            ["\(w.index)", "\(w.pid)", "\(w.generation)", w.state, "\(w.connections)", "\(w.accepted)", "\(w.rejected)"]
        }
        let inbounds = [["INBOUND", "UP/s", "DOWN/s", "UP", "DOWN"]] + (t.inboundsUp ?? [:]).keys.sorted().map { name in
            let up = t.inboundsUp?[name] ?? 0, down = t.inboundsDown?[name] ?? 0
            return [name, rate(up, p?.inboundsUp?[name]), rate(down, p?.inboundsDown?[name]), CtlCommand.bytes(up), CtlCommand.bytes(down)]
        }
        let usersBefore = Dictionary((p?.users ?? []).map { ($0.user, $0) }, uniquingKeysWith: { a, _ in a })
        // Top users by bytes per second since the last refresh (by total before the first one).
        let ranked = t.users.map { u -> (AdminStats.User, UInt64) in
            let b = usersBefore[u.user]
            let delta = b.map { (u.up >= $0.up ? u.up - $0.up : 0) &+ (u.down >= $0.down ? u.down - $0.down : 0) } ?? (u.up &+ u.down)
            return (u, delta)
        }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.user < $1.0.user }
        let users = [["USER (top by rate)", "UP/s", "DOWN/s"]] + ranked.map { u, _ in
            [u.user, rate(u.up, usersBefore[u.user]?.up), rate(u.down, usersBefore[u.user]?.down)]
        }
        let reasons = t.rejected.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let rejected = "rejected: " + (reasons.isEmpty ? "none" : reasons.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        let footer = "q: quit"

        // Rows: head 2, blank, workers, blank, inbounds, blank, users, blank, rejected, footer.
        var room = max(height, 1) - head.count - 2 - 4  // rejected + footer + the four blank lines
        func take(_ table: [[String]], keepAtLeast: Int) -> [[String]] {
            let n = min(table.count, max(keepAtLeast, room))
            room -= n
            return Array(table.prefix(n))
        }
        // Workers matter most, then inbounds, then users: each takes what it needs of what is left.
        let shownWorkers = take(workers, keepAtLeast: min(workers.count, 2))
        let shownInbounds = take(inbounds, keepAtLeast: 0)
        let shownUsers = take(users, keepAtLeast: 0)
        var lines = head + [""] + Self.table(shownWorkers, hidden: workers.count - shownWorkers.count)
        if !shownInbounds.isEmpty { lines += [""] + Self.table(shownInbounds, hidden: inbounds.count - shownInbounds.count) }
        if !shownUsers.isEmpty { lines += [""] + Self.table(shownUsers, hidden: users.count - shownUsers.count) }
        lines += ["", rejected, footer]
        if lines.count > height { lines = Array(lines.prefix(max(height - 1, 0))) + [footer] }
        return lines.map { Self.cut($0, to: width) }
    }

    /// A table whose last row says how many rows did not fit (instead of the last row).
    static func table(_ rows: [[String]], hidden: Int) -> [String] {
        guard hidden > 0, rows.count > 1 else { return CtlCommand.table(rows[0], Array(rows.dropFirst())).split(separator: "\n").map(String.init) }
        var lines = CtlCommand.table(rows[0], Array(rows.dropFirst().dropLast())).split(separator: "\n").map(String.init)
        lines.append("… \(hidden + 1) more")
        return lines
    }

    /// At most `width` characters (terminal columns for the ASCII this prints; a user name in
    /// another script may be wider, which only costs the end of its line).
    static func cut(_ line: String, to width: Int) -> String {
        line.count <= width ? line : String(line.prefix(max(width - 1, 0))) + (width > 0 ? "…" : "")
    }

    static func rate(_ bytesPerSecond: Double) -> String { CtlCommand.scaledBytes(bytesPerSecond, suffix: "/s") }

    static func number(_ value: Double) -> String { value < 10 && value != value.rounded() ? String(format: "%.1f", value) : "\(Int(value))" }
}
