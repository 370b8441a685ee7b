#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Shared

extension SocketOptions {
    /// Linux values Glibc's headers may not name.
    private static let tcpFastOpenConnect: Int32 = 30  // TCP_FASTOPEN_CONNECT (Linux 4.11)
    private static let tcpUserTimeoutOption: Int32 = 18  // TCP_USER_TIMEOUT

    /// Sets the options on a socket channel: a dialed one before it connects (in its initializer),
    /// an accepted one as it is set up. `tcp` false (UDP) skips the TCP-level options. A refusal by
    /// the kernel (no CAP_NET_ADMIN for a mark, an unknown congestion module) fails the future, and
    /// with it the connection: an option the operator asked for is never silently left out.
    func apply(to channel: Channel, tcp: Bool = true) -> EventLoopFuture<Void> {
        guard !isEmpty else { return channel.eventLoop.makeSucceededVoidFuture() }
        guard let socket = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        var steps: [() -> EventLoopFuture<Void>] = []
        func int(_ level: Int32, _ name: Int32, _ value: Int) {
            steps.append { socket.unsafeSetSocketOption(level: SocketOptionLevel(level), name: SocketOptionName(name), value: Int32(value)) }
        }
        func text(_ level: Int32, _ name: Int32, _ value: String) {
            // Up to 15 bytes and a NUL (IFNAMSIZ, TCP_CA_NAME_MAX); the parser bounds the length.
            var bytes = (UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &bytes) { raw in
                for (i, b) in value.utf8.prefix(15).enumerated() { raw[i] = b }
            }
            let copy = bytes
            steps.append { socket.unsafeSetSocketOption(level: SocketOptionLevel(level), name: SocketOptionName(name), value: copy) }
        }
        if let mark { int(SOL_SOCKET, SO_MARK, Int(mark)) }
        if let interface { text(SOL_SOCKET, SO_BINDTODEVICE, interface) }
        if tcp {
            if let tcpNoDelay { int(Int32(IPPROTO_TCP), TCP_NODELAY, tcpNoDelay ? 1 : 0) }
            if tcpKeepAliveIdle != nil || tcpKeepAliveInterval != nil { int(SOL_SOCKET, SO_KEEPALIVE, 1) }
            if let tcpKeepAliveIdle { int(Int32(IPPROTO_TCP), TCP_KEEPIDLE, tcpKeepAliveIdle) }
            if let tcpKeepAliveInterval { int(Int32(IPPROTO_TCP), TCP_KEEPINTVL, tcpKeepAliveInterval) }
            if let tcpCongestion { text(Int32(IPPROTO_TCP), TCP_CONGESTION, tcpCongestion) }
            if let tcpUserTimeout { int(Int32(IPPROTO_TCP), Self.tcpUserTimeoutOption, tcpUserTimeout) }
        }
        var result = channel.eventLoop.makeSucceededVoidFuture()
        for step in steps { result = result.flatMap(step) }
        return result
    }

    /// A dialed TCP socket's Fast Open (data in the SYN once the kernel has a cookie).
    func applyFastOpenConnect(to channel: Channel) -> EventLoopFuture<Void> {
        guard let on = tcpFastOpen, let socket = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        return socket.unsafeSetSocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(Self.tcpFastOpenConnect),
                                            value: Int32(on ? 1 : 0))
    }

    /// The queue length a listening socket gets for Fast Open (nil: leave the listener alone).
    var listenerFastOpenQueue: Int32? {
        guard let on = tcpFastOpen else { return nil }
        return on ? Int32(tcpFastOpenQueueLength ?? 256) : 0
    }
}

/// How an outbound dials: its socket options and the local address it leaves from (`sendThrough`).
struct DialOptions {
    let sockopt: SocketOptions
    /// The parsed `sendThrough` address (port 0), or nil.
    let local: NIOCore.SocketAddress?

    static let none = DialOptions(sockopt: SocketOptions(), sendThrough: nil)

    init(sockopt: SocketOptions, sendThrough: String?) {
        self.sockopt = sockopt
        local = sendThrough.flatMap { try? NIOCore.SocketAddress(ipAddress: $0, port: 0) }
    }

    /// `bootstrap` binding to the local address, with `initializer` run after the options are set.
    /// Every outbound TCP dial comes through here, so it also sets the receive-buffer sizing of
    /// proxied connections (StreamReceiveAllocator).
    func prepare(_ bootstrap: ClientBootstrap,
                 initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> ClientBootstrap {
        let sockopt = self.sockopt
        var b = bootstrap.proxiedStreamReads()
            .channelInitializer { channel in
                sockopt.apply(to: channel).flatMap { sockopt.applyFastOpenConnect(to: channel) }.flatMap { initializer(channel) }
            }
        if let local { b = b.bind(to: local) }
        return b
    }

    /// Where a UDP socket of this outbound binds: the local address, or the wildcard of the family.
    func datagramHost(ipv6: Bool) -> String {
        if let local, let ip = local.ipAddress { return ip }
        return ipv6 ? "::" : "0.0.0.0"
    }
}
