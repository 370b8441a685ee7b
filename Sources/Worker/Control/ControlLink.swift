// The worker's end of its control socket (AF_UNIX SOCK_SEQPACKET, one message per send). The first
// message, `attach`, is read synchronously at start; after that a dispatch read source on the main
// queue delivers messages, and the end of the socket (the supervisor is gone) is delivered as
// `nil`. Sends come from the event loop (heartbeat replies) or the main thread; a SEQPACKET send is
// one atomic message, so the two never interleave.

import Dispatch
import Glibc
import Logging
import Shared

final class ControlLink {
    struct Attachment {
        var sharedMemory: Int32?
        var listeners: [Int32]
    }

    struct LinkError: Error, CustomStringConvertible { var description: String }

    let fd: Int32
    private let logger: Logger
    private var source: DispatchSourceRead?

    init(fd: Int32, logger: Logger) {
        self.fd = fd
        self.logger = logger
    }

    /// Waits (bounded) for the attach message and checks it carries what the bootstrap announced.
    func receiveAttachment(expectedListeners: Int, timeout: Double) throws -> Attachment {
        try Posix.setTimeouts(fd, seconds: timeout)
        let received: Posix.ReceivedMessage
        do {
            guard let r = try Posix.receiveMessage(fd, maximumBytes: ControlMessage.maximumSize) else {
                throw LinkError(description: "no attach message from the supervisor within \(Int(timeout)) s")
            }
            received = r
        } catch let error as PosixError where error.errno == EAGAIN {
            throw LinkError(description: "no attach message from the supervisor within \(Int(timeout)) s")
        }
        if received.isEndOfFile { throw LinkError(description: "the supervisor closed the control socket before attaching") }
        do {
            guard !received.truncated else { throw LinkError(description: "attach message truncated") }
            let message = try ControlMessage.decode(received.bytes)
            guard case .attach(let listeners, let sharedMemory) = message else {
                throw LinkError(description: "expected an attach message first, got \(message)")
            }
            guard message.descriptorCount == received.descriptors.count else {
                throw ControlMessageError.descriptorCount(expected: message.descriptorCount, received: received.descriptors.count)
            }
            guard listeners == expectedListeners else {
                throw LinkError(description: "attach brought \(listeners) listeners, the bootstrap names \(expectedListeners)")
            }
            var fds = received.descriptors
            let shm = sharedMemory ? fds.removeFirst() : nil
            // From here on the socket is polled; it must never block the main queue.
            try Posix.setNonBlocking(fd)
            return Attachment(sharedMemory: shm, listeners: fds)
        } catch {
            for fd in received.descriptors { try? Posix.close(fd) }
            throw error
        }
    }

    /// Delivers each message on `queue`; `nil` once when the supervisor has closed its end.
    func startReceiving(on queue: DispatchQueue, _ handler: @escaping (ControlMessage?) -> Void) {
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [weak self] in self?.drainSocket(handler) }
        self.source = source
        source.resume()
    }

    private func drainSocket(_ handler: (ControlMessage?) -> Void) {
        while true {
            let received: Posix.ReceivedMessage
            do {
                guard let r = try Posix.receiveMessage(fd, maximumBytes: ControlMessage.maximumSize, nonBlocking: true) else { return }
                received = r
            } catch {
                logger.error("control socket read failed", metadata: ["error": "\(error)"])
                stopReceiving()
                handler(nil)
                return
            }
            if received.isEndOfFile {
                stopReceiving()
                handler(nil)
                return
            }
            // Descriptors are only expected with attach, which came already.
            for fd in received.descriptors { try? Posix.close(fd) }
            do {
                handler(try ControlMessage.decode(received.bytes))
            } catch {
                logger.warning("ignoring a bad control message", metadata: ["error": "\(error)"])
            }
        }
    }

    private func stopReceiving() {
        source?.cancel()
        source = nil
    }

    /// Best effort: a supervisor that is gone cannot be told anything, and the worker acts on its
    /// own in that case (it drains when the socket closes).
    func send(_ message: ControlMessage) {
        do {
            try Posix.sendMessage(fd, message.encoded())
        } catch {
            logger.debug("control message not sent", metadata: ["message": "\(message)", "error": "\(error)"])
        }
    }
}
