// What a supervisor hands the new binary at an upgrade (SIGUSR2, `vmessd ctl upgrade`), in the
// environment variable VMESSD_UPGRADE of the new process; the descriptors themselves are inherited
// at the numbers named here (3, 4, …, as Posix.spawn lays them out):
//
//   ready          write end of a pipe: the new supervisor writes "ready\n" once its first
//                  generation of workers serves, and the old one then drains and exits
//   sharedMemory   the region (replay filter, per-user and per-reason counters, worker slots)
//   admin          the admin socket's listener (same path: `vmessd ctl` never finds nobody)
//   listeners      every listening socket, with the key it is reused by at a reload, so the new
//                  supervisor plans its first generation against them as a reload would
//   passed         systemd's sockets (LISTEN_FDS named the old process, not the new one)
//   runtimeUsers   a memfd holding the users added and removed at runtime (RuntimeUsers as JSON):
//                  they survive an upgrade even without a state directory
//
// The new process checks the config before it touches any of it: a binary that rejects the config
// exits, and the old supervisor, seeing it exit before "ready", keeps serving.

import Foundation
import Glibc
import Shared

struct UpgradeHandover: Codable, Equatable {
    static let environmentKey = "VMESSD_UPGRADE"

    struct Listener: Codable, Equatable {
        var key: String
        var name: String
        var fds: [Int32]
        var passed: [Int32]
        /// A Unix-socket inbound's address (a TCP one's is read back from the socket).
        var unix: UnixListenAddress?
        var socketFile: UnixSocketFile?
    }

    struct Passed: Codable, Equatable {
        var fd: Int32
        var name: String?
        var host: String?
        var port: Int?
        var unixPath: [UInt8]?
        /// A UDP socket (mKCP); nil in handovers written before mKCP.
        var datagram: Bool?
    }

    var ready: Int32
    var sharedMemory: Int32
    var admin: Int32?
    var workers: Int
    var listeners: [Listener]
    var passed: [Passed]
    var runtimeUsers: Int32?
    /// Read end of the go pipe: accept once it ends (UpgradeGate).
    var go: Int32?

    /// The handover for the descriptors of this process, and the descriptors in the order the child
    /// gets them (descriptor i of the list becomes 3 + i there).
    static func make(ready: Int32, sharedMemory: Int32, admin: Int32?, listeners: ListenerSet,
                     passed: [PassedSocket], runtimeUsers: Int32? = nil, go: Int32? = nil) -> (handover: UpgradeHandover, descriptors: [Int32]) {
        var descriptors: [Int32] = []
        var numbers: [Int32: Int32] = [:]
        func number(_ fd: Int32) -> Int32 {
            if let n = numbers[fd] { return n }
            let n = 3 + Int32(descriptors.count)
            descriptors.append(fd)
            numbers[fd] = n
            return n
        }
        let handover = UpgradeHandover(
            ready: number(ready), sharedMemory: number(sharedMemory), admin: admin.map(number), workers: listeners.workers,
            listeners: listeners.inbounds.map { inbound in
                var unix: UnixListenAddress?
                if case .unix(let address) = inbound.address { unix = address }
                return Listener(key: inbound.key, name: inbound.name, fds: inbound.fds.map(number), passed: inbound.passed.map(number),
                                unix: unix, socketFile: inbound.socketFile)
            },
            passed: passed.map { Passed(fd: number($0.fd), name: $0.name, host: $0.address?.host, port: $0.address?.port,
                                        unixPath: $0.unixPath, datagram: $0.datagram) },
            runtimeUsers: runtimeUsers.map(number), go: go.map(number))
        return (handover, descriptors)
    }

    /// The listening sockets as a set to plan the first generation against.
    func inheritedListeners() throws -> ListenerSet {
        let inbounds = try listeners.map { listener -> ListenerSet.Inbound in
            guard let first = listener.fds.first else { throw HandoverError("listener \(listener.name) came without sockets") }
            let address: ListenerAddress = try listener.unix.map { .unix($0) } ?? .tcp(Posix.localAddress(fd: first))
            return ListenerSet.Inbound(index: -1, key: listener.key, name: listener.name, address: address, fds: listener.fds,
                                       passed: listener.passed, socketFile: listener.socketFile)
        }
        return ListenerSet(inherited: inbounds, workers: workers)
    }

    var passedSockets: [PassedSocket] {
        passed.map { p in
            PassedSocket(fd: p.fd, name: p.name,
                         address: p.host.flatMap { host in p.port.flatMap { try? SocketAddress(parsing: host, port: $0) } },
                         unixPath: p.unixPath, datagram: p.datagram ?? false)
        }
    }

    /// The previous supervisor's runtime users (closes their descriptor).
    func takeRuntimeUsers() throws -> RuntimeUsers? {
        guard let fd = runtimeUsers else { return nil }
        defer { try? Posix.close(fd) }
        return try JSONDecoder().decode(RuntimeUsers.self, from: Data(try Posix.readAll(fd: fd)))
    }

    func encoded() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }

    /// The handover this process was started with (and removes the variable, so nothing started
    /// later sees it); nil for an ordinary start.
    static func takeFromEnvironment() throws -> UpgradeHandover? {
        guard let text = getenv(environmentKey).map({ String(cString: $0) }) else { return nil }
        unsetenv(environmentKey)
        do {
            return try JSONDecoder().decode(UpgradeHandover.self, from: Data(text.utf8))
        } catch {
            throw HandoverError("\(environmentKey) is not a handover: \(error)")
        }
    }

    struct HandoverError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
