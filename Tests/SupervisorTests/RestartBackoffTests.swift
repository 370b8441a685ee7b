// Respawn backoff: immediate after a healthy run, exponential for quick deaths in a row, capped, and a
// crash loop is flagged after three quick deaths; a stable run clears it.

import XCTest
@testable import Supervisor

final class RestartBackoffTests: XCTestCase {
    func testFirstDeathAfterAHealthyRunIsImmediate() {
        var backoff = RestartBackoff()
        XCTAssertEqual(backoff.workerDied(uptime: 3600), 0)
        XCTAssertFalse(backoff.isCrashLooping)
        XCTAssertEqual(backoff.restarts, 1)
        // Even a quick first death: respawn at once.
        var fresh = RestartBackoff()
        XCTAssertEqual(fresh.workerDied(uptime: 0.1), 0)
    }

    func testQuickDeathsBackOffExponentiallyUpToTheCap() {
        var backoff = RestartBackoff()
        let delays = (0..<14).map { _ in backoff.workerDied(uptime: 0.5) }
        XCTAssertEqual(Array(delays[0..<6]), [0, 0.1, 0.2, 0.4, 0.8, 1.6])
        XCTAssertEqual(delays.last, RestartBackoff.maximumDelay)
        XCTAssertEqual(delays, delays.sorted(), "never shorter than the previous delay")
        XCTAssertEqual(backoff.restarts, 14)
    }

    func testCrashLoopFlagAndRecovery() {
        var backoff = RestartBackoff()
        _ = backoff.workerDied(uptime: 1)
        _ = backoff.workerDied(uptime: 1)
        XCTAssertFalse(backoff.isCrashLooping)
        _ = backoff.workerDied(uptime: 1)
        XCTAssertTrue(backoff.isCrashLooping)
        // Up, but not for long enough yet.
        backoff.workerRunning(uptime: 5)
        XCTAssertTrue(backoff.isCrashLooping)
        backoff.workerRunning(uptime: RestartBackoff.stableAfter)
        XCTAssertFalse(backoff.isCrashLooping)
        XCTAssertEqual(backoff.delay, 0)
        XCTAssertEqual(backoff.restarts, 3, "the count of restarts is history, not the streak")
        // A death after a long run starts a new streak at one.
        _ = backoff.workerDied(uptime: 10)
        XCTAssertEqual(backoff.workerDied(uptime: 10), 0.1)
        XCTAssertEqual(backoff.workerDied(uptime: 100), 0)
    }
}
