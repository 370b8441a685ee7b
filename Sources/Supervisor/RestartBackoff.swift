// When to respawn a worker that died, per worker position. Pure: the pool feeds it exits and uptimes
// and gets delays back.
//
// A worker that dies after a long healthy run is replaced at once (a one-off crash should cost the
// sockets' queued connections as little wait as possible). Quick deaths in a row back off
// exponentially — 0.1 s, 0.2 s, 0.4 s … up to 30 s — so a worker that cannot start (a broken binary,
// a certificate it cannot read) does not turn the supervisor into a fork bomb; after three quick
// deaths in a row the position counts as crash-looping, which STATUS= and `vmessd ctl status` show.
// A respawned worker that then stays up for `stableAfter` seconds clears the streak.

import Foundation

struct RestartBackoff: Equatable {
    static let initialDelay = 0.1
    static let maximumDelay = 30.0
    /// Uptime after which a worker counts as healthy.
    static let stableAfter = 30.0
    static let crashLoopThreshold = 3

    /// Deaths since the last healthy run (the current streak).
    private(set) var consecutiveFailures = 0
    /// Respawns over the supervisor's life.
    private(set) var restarts = 0

    /// Records a death after `uptime` seconds and returns the delay before the respawn.
    mutating func workerDied(uptime: Double) -> Double {
        restarts += 1
        if uptime >= Self.stableAfter {
            consecutiveFailures = 1
        } else {
            consecutiveFailures += 1
        }
        return delay
    }

    /// The delay for the current streak: 0 for the first death, then doubling from `initialDelay`.
    var delay: Double {
        guard consecutiveFailures > 1 else { return 0 }
        let exponent = Double(min(consecutiveFailures - 2, 30))
        return min(Self.maximumDelay, Self.initialDelay * pow(2, exponent))
    }

    /// The worker in this position has now been up for `uptime` seconds.
    mutating func workerRunning(uptime: Double) {
        if uptime >= Self.stableAfter { consecutiveFailures = 0 }
    }

    var isCrashLooping: Bool { consecutiveFailures >= Self.crashLoopThreshold }
}
