// How the gRPC API's handlers (Swift concurrency, on the API's own threads) act on the supervisor,
// whose state lives on the main thread's poll loop and is never locked: a handler queues a closure
// and waits; the poll loop wakes on the eventfd, runs the queued closures with the WorkerPool, and
// each closure's result resumes its handler. Nothing the supervisor does blocks on the API.

import Foundation
import Glibc
import Shared

final class MainLoopBridge: @unchecked Sendable {
    /// Readable while jobs are queued: the read end of a socket pair (non-blocking both ends; a full
    /// pair only means a wake-up is already pending).
    let wakeFD: Int32
    private let signalFD: Int32
    private let lock = NSLock()
    private var jobs: [(WorkerPool?) -> Void] = []
    private var closed = false

    init() throws {
        (wakeFD, signalFD) = try Posix.makeSeqpacketPair()
        try Posix.setNonBlocking(wakeFD)
        try Posix.setNonBlocking(signalFD)
    }

    /// Runs `body` on the main loop and returns its result. After `close`, `body` gets nil at once.
    func perform<T: Sendable>(_ body: @escaping (WorkerPool?) -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let job: (WorkerPool?) -> Void = { pool in continuation.resume(returning: body(pool)) }
            lock.lock()
            if closed {
                lock.unlock()
                job(nil)
                return
            }
            jobs.append(job)
            lock.unlock()
            var one: UInt8 = 1
            _ = Glibc.write(signalFD, &one, 1)
        }
    }

    /// On the main loop, when `wakeFD` is readable.
    func runQueued(_ pool: WorkerPool) {
        var byte: UInt8 = 0
        while Glibc.read(wakeFD, &byte, 1) > 0 {}
        lock.lock()
        let queued = jobs
        jobs.removeAll()
        lock.unlock()
        for job in queued { job(pool) }
    }

    /// The supervisor is exiting: queued and later requests run without it.
    func close() {
        lock.lock()
        closed = true
        let queued = jobs
        jobs.removeAll()
        lock.unlock()
        for job in queued { job(nil) }
    }
}
