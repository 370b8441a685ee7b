import Dispatch
import Glibc
import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared

/// The worker process: receives its bootstrap from the supervisor, serves its listening sockets on
/// one event loop, and drains on SIGTERM (stop accepting, let open connections finish, exit when
/// empty or at the drain timeout).
final class WorkerProcess {
    let bootstrap: WorkerBootstrap
    let logger: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let counters = WorkerCounters()
    private var servers: [Channel] = []

    init(bootstrap: WorkerBootstrap, logger: Logger) {
        self.bootstrap = bootstrap
        self.logger = logger
    }

    func run() throws -> Never {
        Ciphers.preload()
        let loop = group.next()
        let config = bootstrap.config
        // One replay filter per worker for now; the shared-memory filter (issue: supervisor) makes it
        // process-wide.
        let replay = GenerationalReplayFilter()
        guard let first = config.outbounds.first else { throw WorkerError.noOutbound }
        let shared = InboundFactory.Shared(policy: config.policy, replay: replay, counters: counters,
                                           accessLog: AccessLog(config: config.log), logger: logger,
                                           defaultOutbound: OutboundFactory.make(first, logger: logger))

        for listener in bootstrap.listeners {
            let inbound = config.inbounds[listener.inbound]
            let factory = try InboundFactory(index: listener.inbound, inbound: inbound, shared: shared)
            let transport = try InboundTransport(stream: inbound.stream)
            let server = try ServerBootstrap(group: loop)
                .serverChannelOption(ChannelOptions.backlog, value: 4096)
                .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 4096, maximum: 65536))
                .childChannelInitializer { channel in
                    transport.configure(channel, installProtocol: factory.install)
                }
                .withBoundSocket(listener.fd)
                .wait()
            // NIO's withBoundSocket re-listens with a fixed backlog of 128 before options apply;
            // listen again so the accept queue is as deep as the supervisor made it.
            _ = Glibc.listen(listener.fd, 4096)
            servers.append(server)
            logger.info("serving", metadata: ["inbound": "\(inbound.tag ?? inbound.jsonPath)",
                                              "address": "\(server.localAddress?.description ?? "?")"])
        }
        installSignals(loop: loop)
        // The main thread serves the signal sources; the event loop thread does all the relaying.
        dispatchMain()
    }

    private func installSignals(loop: EventLoop) {
        for sig in [SIGTERM, SIGINT, SIGQUIT] { signal(sig, SIG_IGN) }
        signal(SIGPIPE, SIG_IGN)
        let drain = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .main)
        drain.setEventHandler { [self] in loop.execute { self.drain(loop: loop) } }
        drain.resume()
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .main)
        interrupt.setEventHandler { [self] in loop.execute { self.drain(loop: loop) } }
        interrupt.resume()
        let quit = DispatchSource.makeSignalSource(signal: SIGQUIT, queue: .main)
        quit.setEventHandler { exit(0) }
        quit.resume()
        signalSources = [drain, interrupt, quit]
    }

    private var signalSources: [DispatchSourceSignal] = []
    private var draining = false

    private func drain(loop: EventLoop) {
        guard !draining else { return }
        draining = true
        let timeout = bootstrap.config.daemon.drainTimeout ?? 30
        logger.notice("draining", metadata: ["connections": "\(counters.active)", "timeout": "\(timeout)"])
        for s in servers { s.close(promise: nil) }
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
        func check() {
            if counters.active <= 0 || NIODeadline.now() >= deadline {
                logger.notice("exiting", metadata: ["open": "\(counters.active)", "accepted": "\(counters.accepted)",
                                                    "up": "\(counters.bytesUp)", "down": "\(counters.bytesDown)"])
                exit(0)
            }
            loop.scheduleTask(in: .milliseconds(50)) { check() }
        }
        check()
    }
}

enum WorkerError: Error, CustomStringConvertible {
    case usage(String)
    case noOutbound
    var description: String {
        switch self {
        case .usage(let s): s
        case .noOutbound: "the config has no outbound"
        }
    }
}
