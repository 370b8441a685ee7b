// A test-owned sd_notify(3) endpoint: an AF_UNIX datagram socket whose path goes into the server's
// NOTIFY_SOCKET. The supervisor's READY=1 is the readiness signal the harness waits on (a port that
// accepts is not enough: the supervisor's listening sockets accept before any worker serves them).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class NotifySocket {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var stopped = false
    private var task: BackgroundTask<Void>!

    public init(path: String) throws {
        self.path = path
        let maxPath = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        guard path.utf8.count <= maxPath else {
            throw HarnessError("notify socket path too long (\(path.utf8.count) > \(maxPath)): \(path)")
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SocketError.call("socket(AF_UNIX)", errno) }
        unlink(path)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let err = errno
            Glibc.close(fd)
            throw SocketError.call("bind(\(path))", err)
        }
        Sock.setTimeouts(fd, seconds: 0.1)
        task = BackgroundTask("notify-\(path)") { [self] in loop() }
    }

    deinit { close() }

    /// Every datagram received so far, in order.
    public var messages: [String] { lock.lock(); defer { lock.unlock() }; return received }

    /// True once a datagram holding the line `assignment` (e.g. "READY=1") arrived; bounded, and gives
    /// up early when `stillAlive` turns false.
    public func waitFor(_ assignment: String, timeout: TimeInterval, stillAlive: () -> Bool = { true }) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if messages.contains(where: { $0.split(separator: "\n").contains(Substring(assignment)) }) { return true }
            if Date() >= deadline || !stillAlive() {
                usleep(100_000) // a datagram sent right before exiting is still worth seeing
                return messages.contains(where: { $0.split(separator: "\n").contains(Substring(assignment)) })
            }
            usleep(20_000)
        }
    }

    public func close() {
        lock.lock()
        if stopped { lock.unlock(); return }
        stopped = true
        lock.unlock()
        _ = task?.join(timeout: 5)
        Glibc.close(fd)
        unlink(path)
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            lock.lock(); let done = stopped; lock.unlock()
            if done { return }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { continue }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            lock.lock(); received.append(text); lock.unlock()
        }
    }
}
