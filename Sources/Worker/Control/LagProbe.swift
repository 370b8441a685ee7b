// Measures how late the worker's event loop runs a task it scheduled: every `interval` it compares
// when it ran with when it was due. Lateness is time the loop spent on something else (a burst of
// handshakes, a long synchronous step) and is added to every connection's latency on this worker.
// The last and the largest value go to the worker's slot (CounterPublisher), the metrics read them.

import NIOCore
import Shared

final class LagProbe {
    static let interval = TimeAmount.milliseconds(500)

    private let counters: WorkerCounters
    private var due: NIODeadline

    private init(counters: WorkerCounters) {
        self.counters = counters
        due = .now() + Self.interval
    }

    /// Starts probing on `loop` for the worker's life.
    static func start(on loop: EventLoop, counters: WorkerCounters) {
        let probe = LagProbe(counters: counters)
        // `delay` counts from the end of each run, so the next run is due `interval` after this one.
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in probe.run() }
    }

    private func run() {
        let now = NIODeadline.now()
        let late = now > due ? UInt64((now - due).nanoseconds / 1000) : 0
        counters.lag.lastMicroseconds = late
        counters.lag.maxMicroseconds = max(counters.lag.maxMicroseconds, late)
        counters.lag.probes &+= 1
        due = now + Self.interval
    }
}
