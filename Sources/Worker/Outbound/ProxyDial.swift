#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Shared

/// `proxySettings.tag`: an outbound whose connections are carried by another outbound (a chain:
/// vmess through vmess, through a socks-speaking peer, ...). Each connection is a connected socket
/// pair: this outbound's transport and protocol run on one end exactly as on a TCP socket (TLS,
/// WebSocket and all), and the other end is relayed through the proxy outbound to the server's
/// address, as a dokodemo-door connection would be (the same relay, backpressure and timeouts).
final class ProxyDial {
    private let context: ClientInboundContext

    /// `through`: the proxy outbound; `tag`: its tag (names the relay in logs and routing origins).
    init(through outbound: Outbound, tag: String, policy: PolicyConfig, counters: WorkerCounters, logger: Logger) throws {
        var l = logger
        l[metadataKey: "proxy"] = "\(tag)"
        context = try ClientInboundContext(
            config: InboundConfig(tag: "proxy:\(tag)", port: 1, settings: .dokodemo(DokodemoSettings(address: "", port: 0)),
                                  jsonPath: "proxySettings"),
            userLevel: 0, policy: policy, outbounds: OutboundSelector(outbounds: [outbound]),
            counters: counters, logger: l, accessLog: nil)
    }

    /// The end this outbound's pipeline runs on (`initializer`), connected once the pair exists; the
    /// other end already relayed toward host:port through the proxy.
    func connect(host: String, port: Int, on loop: EventLoop,
                 initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        guard let p = UInt16(exactly: port), !host.isEmpty, host.utf8.count <= 255 else {
            return loop.makeFailedFuture(ChannelError.badInterfaceAddressFamily)
        }
        let address = IPLiteral.parse(host) ?? .domain(host)
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return loop.makeFailedFuture(IOError(errnoCode: errno, reason: "socketpair"))
        }
        let context = self.context
        let destination = Destination(network: .tcp, address: address, port: p)
        let relayed = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .proxiedStreamReads()
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ClientInboundHandler(inbound: context, handshake: NoHandshake(), fixedDestination: destination))
                }
            }
            .withConnectedSocket(fds[1])
        let carried = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .proxiedStreamReads()
            .channelInitializer(initializer)
            .withConnectedSocket(fds[0])
        // If one end could not be set up, the other must not stay open.
        relayed.whenFailure { _ in carried.whenSuccess { channel in channel.close(promise: nil) } }
        carried.whenFailure { _ in relayed.whenSuccess { channel in channel.close(promise: nil) } }
        return relayed.flatMap { _ in carried }
    }
}
