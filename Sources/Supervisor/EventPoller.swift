// poll(2) over the supervisor's few descriptors: the signalfd, the workers' control sockets and the
// admin socket with its clients. A handful of descriptors that change on every spawn and exit: poll's
// per-call list is simpler than maintaining an epoll set, and costs nothing at this size.

import Glibc
import Shared

enum EventPoller {
    struct Ready: Equatable {
        var fd: Int32
        var readable: Bool
        /// Hang-up or error: the peer is gone (a read then returns end of file or the error).
        var closed: Bool
    }

    /// Waits until one of `fds` is readable or closed, or `timeout` seconds pass (nil: no limit).
    static func wait(_ fds: [Int32], timeout: Double?) throws -> [Ready] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let milliseconds: Int32
        if let timeout {
            // Round up: waking a millisecond early would spin until the deadline.
            milliseconds = Int32(clamping: Int((max(0, timeout) * 1000).rounded(.up)))
        } else {
            milliseconds = -1
        }
        let count = entries.count
        let n = try entries.withUnsafeMutableBufferPointer { buffer in
            try Posix.retryingEINTR("poll") { poll(buffer.baseAddress, nfds_t(count), milliseconds) }
        }
        guard n > 0 else { return [] }
        return entries.compactMap { entry in
            guard entry.revents != 0 else { return nil }
            let closed = entry.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
            return Ready(fd: entry.fd, readable: entry.revents & Int16(POLLIN) != 0, closed: closed)
        }
    }
}
