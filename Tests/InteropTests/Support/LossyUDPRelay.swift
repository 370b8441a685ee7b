// A lossy UDP link between one client and one server on loopback: datagrams from the client to
// `port` go on to the server from a socket of the relay's own, the server's answers come back, and
// each direction drops a fixed share of them at random. The mKCP loss tests put it between the two
// peers. (tc netem would do the same in a network namespace, but the sch_netem qdisc is not built
// into every kernel these tests run on — "Specified qdisc kind is unknown" here — and this needs
// neither the module nor privileges.)

import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

final class LossyUDPRelay {
    let port: UInt16
    private let front: Int32
    private let back: Int32
    private let serverPort: UInt16
    private let lossPercent: UInt32
    private let lock = NSLock()
    private var stopped = false
    private var counts = (forwarded: 0, dropped: 0)
    private var task: BackgroundTask<Void>!

    init(serverPort: UInt16, lossPercent: UInt32) throws {
        self.serverPort = serverPort
        self.lossPercent = lossPercent
        front = try Sock.socket(Sock.datagramType)
        back = try Sock.socket(Sock.datagramType)
        do {
            try Sock.bind(front, port: 0)
            try Sock.bind(back, port: 0)
            port = try Sock.localPort(front)
        } catch {
            close(front); close(back)
            throw error
        }
        task = BackgroundTask("lossy-udp-\(port)") { [self] in loop() }
    }

    deinit { stop() }

    var dropped: Int { lock.lock(); defer { lock.unlock() }; return counts.dropped }
    var forwarded: Int { lock.lock(); defer { lock.unlock() }; return counts.forwarded }

    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        _ = task?.join(timeout: 5)
        [front, back].forEach { close($0) }
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var client: sockaddr_storage?
        var clientLength = socklen_t(0)
        var server = Sock.loopback(port: serverPort)
        var fds = [pollfd(fd: front, events: Int16(POLLIN), revents: 0), pollfd(fd: back, events: Int16(POLLIN), revents: 0)]
        while true {
            if lock.withLock({ stopped }) { return }
            guard poll(&fds, 2, 100) > 0 else { continue }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var from = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { buf in
                    withUnsafeMutablePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(front, buf.baseAddress, buf.count, 0, $0, &length) }
                    }
                }
                if n > 0 {
                    client = from
                    clientLength = length
                    if keep() {
                        _ = buffer.withUnsafeBytes { buf in
                            withUnsafePointer(to: &server) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                    sendto(back, buf.baseAddress, n, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                                }
                            }
                        }
                    }
                }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(back, $0.baseAddress, $0.count, 0) }
                if n > 0, var to = client, keep() {
                    _ = buffer.withUnsafeBytes { buf in
                        withUnsafePointer(to: &to) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(front, buf.baseAddress, n, 0, $0, clientLength) }
                        }
                    }
                }
            }
        }
    }

    private func keep() -> Bool {
        let drop = UInt32.random(in: 0..<100) < lossPercent
        lock.lock()
        if drop { counts.dropped += 1 } else { counts.forwarded += 1 }
        lock.unlock()
        return !drop
    }
}
