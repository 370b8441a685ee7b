// Counts the worker's open client connections at the transport level — from accept to close, TLS and
// WebSocket handshakes included — because a drain must wait for every accepted connection, not only
// those that have reached the VMess handler. Event-loop confined (one loop per worker).

import Glibc
import NIOCore
import Shared

final class ConnectionTracker {
    private(set) var open = 0
    private(set) var accepted: UInt64 = 0
    /// accept(2) failures (EMFILE, ENFILE, ENOBUFS, ENOMEM …), each followed by an accept pause.
    var acceptErrors: UInt64 = 0
    /// Open connections per client address (IP only: ports differ per connection).
    private var perSource: [SourceKey: Int] = [:]
    let limits: ClientLimits
    /// Told of every connection refused for a limit (the worker counts them).
    var refused: (DropReason) -> Void = { _ in }

    /// The accepted channel's initializer fails with this when a limit is reached: the channel is
    /// closed before any protocol handler exists, and the error is not logged as a failure.
    struct LimitReached: Error { var reason: DropReason }

    init(limits: ClientLimits = ClientLimits()) { self.limits = limits }

    /// The first handler of every accepted channel, or nil when the worker or the channel's source
    /// address already holds its limit of connections (the caller then fails the initializer).
    /// `bySource` false: the peer is a balancer speaking the PROXY protocol, whose address says
    /// nothing about the client; the source is claimed later with `Handler.claim` once the header
    /// has told who the client is.
    /// `connections`: the inbound's metric counters (opened at admission, closed at teardown).
    func admit(_ channel: Channel, bySource: Bool = true, connections: ConnectionMeter? = nil) -> Handler? {
        let source = bySource ? channel.remoteAddress.flatMap(SourceKey.init) : nil
        if open >= limits.connectionsPerWorker {
            refused(.connectionLimit)
            return nil
        }
        if let source, perSource[source, default: 0] >= limits.connectionsPerSource {
            refused(.sourceLimit)
            return nil
        }
        return Handler(tracker: self, source: source, connections: connections)
    }

    func openConnections(from address: NIOCore.SocketAddress) -> Int {
        SourceKey(address).map { perSource[$0, default: 0] } ?? 0
    }

    /// An IP address as two words: hashable without allocation.
    struct SourceKey: Hashable {
        var hi: UInt64
        var lo: UInt64

        init?(_ address: NIOCore.SocketAddress) {
            switch address {
            case .v4(let a):
                hi = 0
                lo = UInt64(a.address.sin_addr.s_addr)
            case .v6(let a):
                var addr = a.address.sin6_addr
                (hi, lo) = withUnsafeBytes(of: &addr) {
                    ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                }
            default:
                return nil  // Unix sockets: no address to limit by
            }
        }
    }

    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let tracker: ConnectionTracker
        private(set) var source: SourceKey?
        private var counted = false
        private let connections: ConnectionMeter?

        /// Counts this connection against `address`'s limit (the client a PROXY header named), or
        /// returns false when that address already holds its limit. Once per connection, after
        /// `admit(_:bySource: false)`; a source that cannot be keyed (nil, Unix) is not limited.
        func claim(_ address: NIOCore.SocketAddress?) -> Bool {
            guard source == nil, let key = address.flatMap(SourceKey.init) else { return true }
            if tracker.perSource[key, default: 0] >= tracker.limits.connectionsPerSource {
                tracker.refused(.sourceLimit)
                return false
            }
            source = key
            if counted { tracker.perSource[key, default: 0] += 1 }
            return true
        }

        init(tracker: ConnectionTracker, source: SourceKey?, connections: ConnectionMeter? = nil) {
            self.tracker = tracker
            self.source = source
            self.connections = connections
        }

        func handlerAdded(context: ChannelHandlerContext) {
            guard !counted else { return }
            counted = true
            tracker.open += 1
            tracker.accepted += 1
            connections?.open()
            if let source { tracker.perSource[source, default: 0] += 1 }
        }

        // Called when the pipeline is torn down at close, also for a channel closed before it ever
        // became active, so every increment is matched exactly once.
        func handlerRemoved(context: ChannelHandlerContext) {
            guard counted else { return }
            counted = false
            tracker.open -= 1
            connections?.close()
            // What the connection's buffers held goes back to the kernel (shared, rate-bounded trim).
            HeapTrim.request(on: context.eventLoop)
            if let source {
                let n = tracker.perSource[source, default: 1] - 1
                tracker.perSource[source] = n > 0 ? n : nil
            }
        }
    }

    /// The server channel's handler for accept(2) failures. Out of descriptors (EMFILE, ENFILE) or
    /// memory (ENOBUFS, ENOMEM), the listening socket stays readable; NIO keeps its read interest
    /// while a read is pending, so without a pause accept would fail in a tight loop at 100% CPU
    /// (NIO's AcceptBackoffHandler only delays the *next* read() request and does not help here).
    /// This handler turns accepting off (autoRead false drops the read interest), and back on after
    /// `pause` if `mayResume()` still holds (not draining). Errors are counted, logged at most once
    /// per 10 s. Other errors are logged (at most once per 10 s) and go on down the pipeline (NIO
    /// closes the channel for fatal ones).
    func makeAcceptPauseHandler(pause: TimeAmount, mayResume: @escaping () -> Bool,
                                log: @escaping (Error, UInt64) -> Void,
                                otherError: @escaping (Error) -> Void) -> ChannelHandler {
        AcceptPause(tracker: self, pause: pause, mayResume: mayResume, log: log, otherError: otherError)
    }

    private final class AcceptPause: ChannelInboundHandler {
        typealias InboundIn = NIOAny
        let tracker: ConnectionTracker
        let pause: TimeAmount
        let mayResume: () -> Bool
        let log: (Error, UInt64) -> Void
        let otherError: (Error) -> Void
        private var lastLog: NIODeadline?
        private var lastOtherLog: NIODeadline?
        private var paused = false

        init(tracker: ConnectionTracker, pause: TimeAmount, mayResume: @escaping () -> Bool, log: @escaping (Error, UInt64) -> Void,
             otherError: @escaping (Error) -> Void) {
            self.tracker = tracker
            self.pause = pause
            self.mayResume = mayResume
            self.log = log
            self.otherError = otherError
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if error is LimitReached { return }  // counted by the tracker; not a failure of the server
            guard let io = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode) else {
                // Anything else reaching the server channel (an accepted connection whose options or
                // registration failed, say) would otherwise vanish without a trace.
                let now = NIODeadline.now()
                if lastOtherLog.map({ now - $0 >= .seconds(10) }) ?? true {
                    lastOtherLog = now
                    otherError(error)
                }
                context.fireErrorCaught(error)
                return
            }
            tracker.acceptErrors += 1
            let now = NIODeadline.now()
            if lastLog.map({ now - $0 >= .seconds(10) }) ?? true {
                lastLog = now
                log(error, tracker.acceptErrors)
            }
            guard !paused else { return }
            paused = true
            let channel = context.channel
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            context.eventLoop.scheduleTask(in: pause) { [self] in
                paused = false
                guard channel.isActive, mayResume() else { return }
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            }
        }
    }
}
