import CShims
import NIOConcurrencyHelpers
import NIOCore

/// Returns memory that closed and quiet connections gave up to the kernel.
///
/// The worker tunes glibc never to trim its heap on its own (WorkerMain: relay buffers are freed and
/// reallocated at a high rate, and trimming would page-fault them back in on every burst). So the
/// receive buffers a quiet connection drops (StreamReceiveAllocator.releaseIdle) stay
/// resident as free heap unless something trims, and so do the buffers of closed connections: a
/// worker's memory would stay at its busiest moment's mark for good. One `malloc_trim` runs
/// `delay` after the first request, and requests made while it is pending share it: at most one
/// trim per `delay` per worker, whatever the number of connections going quiet or closing, and none
/// while nothing does.
enum HeapTrim {
    static let delay: TimeAmount = .seconds(2)
    private static let pending = NIOLockedValueBox(false)

    static func request(on loop: EventLoop) {
        let first = pending.withLockedValue { isPending in
            defer { isPending = true }
            return !isPending
        }
        guard first else { return }
        loop.scheduleTask(in: delay) {
            pending.withLockedValue { $0 = false }
            _ = vmessd_release_free_memory()
        }
    }
}
