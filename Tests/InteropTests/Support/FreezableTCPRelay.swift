// A TCP relay between a client and one server on loopback that can go silent: while frozen it moves
// no byte either way and closes nothing, like a NAT that forgot the flow or a server host that
// vanished without a FIN. It records when a client closes its side, so a test can tell when the
// client gave up on a connection. The HTTP/2 keep-alive tests put it between vmessd and a server.

import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

final class FreezableTCPRelay {
    let port: UInt16
    private let listener: Int32
    private let serverPort: UInt16
    private let lock = NSLock()
    private var frozen = false
    private var stopped = false
    private var accepted = 0
    private var clientCloses: [Date] = []
    private var sockets: [Int32] = []
    private var acceptTask: BackgroundTask<Void>!

    init(serverPort: UInt16) throws {
        self.serverPort = serverPort
        (listener, port) = try Sock.listen()
        acceptTask = BackgroundTask("relay-accept-\(port)") { [self] in acceptLoop() }
    }

    var connections: Int { lock.withLock { accepted } }
    /// When each client connection was closed by the client (EOF or reset on its side).
    var closedByClient: [Date] { lock.withLock { clientCloses } }
    func freeze() { lock.withLock { frozen = true } }
    func thaw() { lock.withLock { frozen = false } }

    func stop() {
        let all: [Int32] = lock.withLock {
            stopped = true
            return sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in all { shutdown(fd, Int32(SHUT_RDWR)) }
        _ = acceptTask.join(timeout: 5)
        close(listener)
    }

    /// Linux's POLLRDHUP (not exported without _GNU_SOURCE).
    private static let pollRDHUP: Int32 = 0x2000

    private var isStopped: Bool { lock.withLock { stopped } }
    private var isFrozen: Bool { lock.withLock { frozen } }

    private func acceptLoop() {
        while !isStopped {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { if isStopped { return } else { continue } }
            guard let server = try? Sock.connect(port: serverPort) else { close(client); continue }
            lock.withLock {
                accepted += 1
                sockets += [client, server]
            }
            _ = BackgroundTask<Void>("relay-up-\(port)") { [self] in pump(from: client, to: server, fromClient: true) }
            _ = BackgroundTask<Void>("relay-down-\(port)") { [self] in pump(from: server, to: client, fromClient: false) }
        }
    }

    /// Copies until EOF; while frozen it stops reading (the bytes wait in the kernel).
    private func pump(from source: Int32, to destination: Int32, fromClient: Bool) {
        Sock.setTimeouts(source, seconds: 0.1)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopped {
            if isFrozen {
                // Nothing is read, but a client that closes is still seen (POLLRDHUP: the peer shut
                // its side, even with bytes still unread before the FIN).
                var p = pollfd(fd: source, events: Int16(Self.pollRDHUP), revents: 0)
                if poll(&p, 1, 20) > 0, p.revents & Int16(Self.pollRDHUP | Int32(POLLHUP) | Int32(POLLERR)) != 0 {
                    if fromClient { lock.withLock { clientCloses.append(Date()) } }
                    return
                }
                continue
            }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(source, $0.baseAddress, $0.count) }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
            if n <= 0 {
                if fromClient { lock.withLock { clientCloses.append(Date()) } }
                shutdown(destination, Int32(SHUT_WR))
                return
            }
            var offset = 0
            while offset < n {
                let w = buffer[offset..<n].withUnsafeBytes { Glibc.write(destination, $0.baseAddress, $0.count) }
                if w <= 0 { return }
                offset += w
            }
        }
    }
}
