// Accepting on a listening socket that other processes accept on too: a Unix-socket inbound's one
// socket, which every worker of every live generation shares (AF_UNIX has no SO_REUSEPORT groups).
//
// NIO's server channel is not made for that: every worker is woken for each connection, all but one
// find accept(2) returning EAGAIN, and NIO treats a readable event that reads nothing as a broken
// invariant (an assertion in debug builds). So this acceptor polls the socket from a dispatch source
// of its own, accepts non-blocking (EAGAIN: another worker was faster, nothing to do), and hands each
// connection to NIO as an already connected socket with the same initializer a server channel would
// run. The cost is one thread hop per accepted connection; nothing per byte.

import Dispatch
import Glibc
import Logging
import NIOCore
import NIOPosix
import Shared

final class SharedSocketAcceptor {
    private let fd: Int32
    private let source: DispatchSourceRead
    private let queue: DispatchQueue
    private let bootstrap: ClientBootstrap
    private let pause: TimeAmount
    private let onAcceptError: (Error) -> Void
    /// Queue-confined.
    private var suspended = true
    private var cancelled = false

    /// Connections accepted per readable event before yielding (like ChannelOptions.maxMessagesPerRead).
    static let acceptsPerWakeup = 16

    /// `initializer` sets up each accepted connection's pipeline (what a server channel's child
    /// initializer does); `onAcceptError` is told about descriptor or memory exhaustion, after which
    /// accepting pauses for `pause`.
    init(fd: Int32, name: String, loop: EventLoop, pause: TimeAmount,
         childOptions: (ClientBootstrap) -> ClientBootstrap,
         initializer: @escaping (Channel) -> EventLoopFuture<Void>,
         onAcceptError: @escaping (Error) -> Void) throws {
        // The open file description is shared with the supervisor and the other workers; none of them
        // blocks on it (the supervisor never accepts), and this acceptor must never block.
        try Posix.setNonBlocking(fd)
        self.fd = fd
        self.pause = pause
        self.onAcceptError = onAcceptError
        queue = DispatchQueue(label: "vmessd.accept.\(name)")
        bootstrap = childOptions(ClientBootstrap(group: loop)).channelInitializer(initializer)
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in acceptPending() }
        source.setCancelHandler { [fd] in try? Posix.close(fd) }
    }

    /// Starts (or resumes) accepting.
    func start() {
        queue.async { [self] in
            guard suspended, !cancelled else { return }
            suspended = false
            source.resume()
        }
    }

    /// Stops accepting for good and closes this process's descriptor (the socket lives on in the
    /// supervisor and the other workers, with whatever is queued on it).
    func close() {
        queue.async { [self] in
            guard !cancelled else { return }
            cancelled = true
            source.cancel()
            // A suspended source must be resumed to be released (libdispatch's rule); once cancelled
            // its event handler no longer runs.
            if suspended {
                suspended = false
                source.resume()
            }
        }
    }

    private func acceptPending() {
        for _ in 0..<Self.acceptsPerWakeup {
            let client: Int32?
            do {
                client = try Posix.accept(fd)
            } catch let error as PosixError where [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno) {
                // Out of descriptors or memory: the connection stays queued; try again after a pause
                // instead of spinning on a socket that stays readable.
                onAcceptError(error)
                suspended = true
                source.suspend()
                queue.asyncAfter(deadline: .now() + .nanoseconds(Int(pause.nanoseconds))) { [self] in
                    guard suspended, !cancelled else { return }
                    suspended = false
                    source.resume()
                }
                return
            } catch {
                onAcceptError(error)
                return
            }
            guard let client else { return }  // EAGAIN: another worker took it, or nothing left
            bootstrap.withConnectedSocket(client).whenFailure { _ in
                // The initializer refused it (a limit) or registration failed: NIO closed the
                // channel, and the tracker counted the reason.
            }
        }
    }
}
