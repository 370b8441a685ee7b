// `vmessd ctl top`: a live view refreshed every second from the admin socket's `status` and
// `stats` answers (the data `vmessd ctl status|stats` print), drawn by TopView. Quits on q or
// Ctrl-C (and on SIGTERM/SIGHUP, e.g. an SSH session closing), restoring the terminal.

import Foundation
import Glibc
import Shared

/// Set from a signal handler: the loop ends at its next turn.
nonisolated(unsafe) private var topStopRequested: sig_atomic_t = 0

extension CtlCommand {
    static let topInterval = 1.0

    func runTop(path: String) throws {
        guard TopTerminal.isInteractive else {
            printError("vmessd ctl top needs a terminal; use `vmessd ctl --json stats` in scripts")
            throw ExitStatus.runtimeFailure
        }
        let terminal = TopTerminal()
        try terminal.enter()
        defer { terminal.leave() }
        for signal in [SIGTERM, SIGHUP] { Glibc.signal(signal) { _ in topStopRequested = 1 } }

        var previous: TopView.Sample?
        while topStopRequested == 0 {
            let size = TopTerminal.size()
            let view = TopView(width: size.width, height: size.height)
            do {
                let sample = try Self.topSample(path: path)
                terminal.draw(view.render(sample, previous: previous))
                previous = sample
            } catch {
                // The supervisor may be busy (an upgrade) or gone: say so and keep trying.
                terminal.draw([TopView.cut("cannot reach vmessd at \(path): \(error)", to: size.width), "", "q: quit"])
                previous = nil
            }
            let deadline = monotonicNow() + Self.topInterval
            while topStopRequested == 0, case let left = deadline - monotonicNow(), left > 0 {
                let keys = terminal.keys(waiting: left)
                // q, Q, Ctrl-C (ISIG is off: it arrives as a key), Ctrl-D.
                if keys.contains(where: { [UInt8(ascii: "q"), UInt8(ascii: "Q"), 3, 4].contains($0) }) { return }
            }
        }
    }

    static func topSample(path: String) throws -> TopView.Sample {
        let status = try exchange(path: path, request: AdminRequest(command: .status), timeout: 2)
        let stats = try exchange(path: path, request: AdminRequest(command: .stats), timeout: 2)
        guard let s = status.status, let t = stats.stats else { throw ReloadError(description: status.message) }
        return TopView.Sample(status: s, stats: t, at: monotonicNow())
    }
}
