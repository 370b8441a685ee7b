import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import Worker
import XCTest

/// The activity timer's quiet callback (which gives back a quiet connection's receive buffers):
/// once per quiet period, again after new activity, and never in the way of the idle timeout.
/// Real event loop and clock; the waits are several times the periods so a loaded machine does not
/// turn them into failures.
final class ConnectionTimerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var loop: EventLoop { group.next() }

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    private final class Counts: @unchecked Sendable {
        let quiet = NIOLockedValueBox(0)
        let expired = NIOLockedValueBox(0)
    }

    private func makeTimer(timeout: TimeAmount, quiet: TimeAmount, _ counts: Counts) throws -> ConnectionTimer {
        try loop.submit {
            ConnectionTimer(loop: self.loop, timeout: timeout, quiet: quiet,
                            onQuiet: { counts.quiet.withLockedValue { $0 += 1 } },
                            onExpire: { counts.expired.withLockedValue { $0 += 1 } })
        }.wait()
    }

    func testQuietRunsOncePerQuietPeriodAndAgainAfterActivity() throws {
        let counts = Counts()
        let timer = try makeTimer(timeout: .seconds(60), quiet: .milliseconds(100), counts)
        defer { try? loop.submit { timer.cancel() }.wait() }

        Thread.sleep(forTimeInterval: 0.8)
        XCTAssertEqual(counts.quiet.withLockedValue { $0 }, 1, "one quiet period, one call")

        try loop.submit { timer.touch() }.wait()
        Thread.sleep(forTimeInterval: 0.8)
        XCTAssertEqual(counts.quiet.withLockedValue { $0 }, 2, "activity, then quiet again: a second call")

        try loop.submit { timer.reset(to: .seconds(60)) }.wait()
        Thread.sleep(forTimeInterval: 0.8)
        XCTAssertEqual(counts.quiet.withLockedValue { $0 }, 3, "a reset counts as activity")
        XCTAssertEqual(counts.expired.withLockedValue { $0 }, 0)
    }

    func testIdleTimeoutStillExpiresAfterTheQuietCall() throws {
        let counts = Counts()
        let timer = try makeTimer(timeout: .milliseconds(400), quiet: .milliseconds(100), counts)
        defer { try? loop.submit { timer.cancel() }.wait() }
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(counts.quiet.withLockedValue { $0 }, 1)
        XCTAssertEqual(counts.expired.withLockedValue { $0 }, 1, "the connection still closes at its idle timeout")
    }

    func testWithoutQuietCallbackOnlyExpiryRuns() throws {
        let counts = Counts()
        let timer = try loop.submit {
            ConnectionTimer(loop: self.loop, timeout: .milliseconds(200)) { counts.expired.withLockedValue { $0 += 1 } }
        }.wait()
        defer { try? loop.submit { timer.cancel() }.wait() }
        Thread.sleep(forTimeInterval: 0.8)
        XCTAssertEqual(counts.expired.withLockedValue { $0 }, 1)
    }
}
