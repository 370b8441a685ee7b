// UDP target: echoes each datagram back to its sender (or answers what `respond` makes of it). One
// thread; its recvfrom carries a short SO_RCVTIMEO so it notices stop() within a fraction of a second.

import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

final class UDPEchoServer {
    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var stopped = false
    private var echoed = 0
    private var task: BackgroundTask<Void>!
    /// The answer to one datagram; nil = the datagram itself.
    private let respond: (([UInt8]) -> [UInt8])?

    init(respond: (([UInt8]) -> [UInt8])? = nil) throws {
        self.respond = respond
        fd = try Sock.socket(Sock.datagramType)
        do {
            try Sock.bind(fd, port: 0)
            port = try Sock.localPort(fd)
        } catch {
            close(fd)
            throw error
        }
        Sock.setTimeouts(fd, seconds: 0.2)
        task = BackgroundTask("udp-echo-\(port)") { [self] in loop() }
    }

    deinit { stop() }

    var datagramsEchoed: Int { lock.lock(); defer { lock.unlock() }; return echoed }

    func stop() {
        lock.lock()
        if stopped { lock.unlock(); return }
        stopped = true
        lock.unlock()
        _ = task?.join(timeout: 5)
        close(fd)
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            lock.lock(); let done = stopped; lock.unlock()
            if done { return }
            var from = sockaddr_storage()
            var fromLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { buf in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, buf.baseAddress, buf.count, 0, $0, &fromLen)
                    }
                }
            }
            if n < 0 { continue } // timeout slice or EINTR
            let reply = respond.map { $0(Array(buffer[0..<n])) }
            _ = (reply ?? buffer).withUnsafeBytes { buf in
                withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buf.baseAddress, reply?.count ?? n, 0, $0, fromLen)
                    }
                }
            }
            lock.lock(); echoed += 1; lock.unlock()
        }
    }
}
