import Dispatch
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import Shared

/// The worker process: gets its bootstrap (config, identity) from the supervisor and, over its control
/// socket, the shared-memory region and its listening sockets; serves them on one event loop; reports
/// ready; answers heartbeats from the event loop (so a wedged loop goes unanswered); drains on request
/// (stop accepting, let open connections finish, exit when none is left or at the drain timeout).
///
/// Threads: the event loop does all networking and owns every counter; the main thread only runs
/// the dispatch sources for signals and the control socket and hops onto the loop to act.
public final class WorkerProcess {
    let bootstrap: WorkerBootstrap
    let logger: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let counters = WorkerCounters()
    let tracker: ConnectionTracker
    private var servers: [Channel] = []
    /// Listeners shared with other processes (Unix sockets): accepted on outside NIO's server channel.
    private var sharedAcceptors: [SharedSocketAcceptor] = []
    /// mKCP inbounds' UDP channels: kept open while draining (their sessions live on them), only
    /// told to start no new session.
    var kcpServers: [(channel: Channel, listener: KCPListener)] = []
    private var control: ControlLink?
    private var region: SharedRegion?
    private var publisher: CounterPublisher?
    private var userLimiter: UserLimiter?
    private var signalSources: [DispatchSourceSignal] = []
    /// Event-loop confined: told to accept (or running without a supervisor), and not draining.
    private var accepting: Bool
    var isAccepting: Bool { accepting }
    private var draining = false
    /// The vmess inbounds by tag (several per tag for port ranges): runtime user changes go to them.
    private var vmessInbounds: [String: [InboundContext]] = [:]
    private var accessLog: AccessLog?
    /// HTTP/2 connections (gRPC, h2 transports) close once idle when this fires.
    private let drainSignal = DrainSignal()

    /// Bound on waiting for the attach message after spawn.
    static let attachTimeout = 30.0
    static let publishInterval = TimeAmount.seconds(1)
    /// How long accepting pauses after accept(2) fails for lack of descriptors or memory: long enough
    /// not to spin, short enough that service resumes quickly once connections close (see
    /// ConnectionTracker.makeAcceptPauseHandler).
    static let acceptBackoff = TimeAmount.milliseconds(250)

    public init(bootstrap: WorkerBootstrap, logger: Logger) {
        self.bootstrap = bootstrap
        var logger = logger
        logger[metadataKey: "generation"] = "\(bootstrap.generation)"
        self.logger = logger
        accepting = bootstrap.controlFD == nil
        tracker = ConnectionTracker(limits: bootstrap.config.daemon.limits)
        Self.applyProcessWideLimits(bootstrap.config.daemon.limits)
        tracker.refused = { [counters] reason in counters.drop(reason) }
    }

    public func run() throws -> Never {
        // Before anything can block: a terminal hangup is the supervisor's business (reload), and a
        // peer that vanished mid-write must not kill the process.
        signal(SIGHUP, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        do {
            try start()
        } catch {
            // Tell the supervisor why before dying, so its log and STATUS= name the reason.
            control?.send(.failed(reason: "\(error)"))
            throw error
        }
        control?.send(.ready(pid: getpid()))
        logger.info("ready", metadata: ["listeners": "\(servers.count + sharedAcceptors.count + kcpServers.count)"])
        // The main thread serves the signal and control sources; the event loop does the relaying.
        dispatchMain()
    }

    /// The limits that hold for the whole process rather than per connection or inbound.
    static func applyProcessWideLimits(_ limits: ClientLimits) {
        KeptBytesBudget.worker.limit = limits.waitingBytesPerWorker
    }

    private func start() throws {
        Ciphers.preload()
        if !Ciphers.aeadIsDirect {
            // Still correct, ~150 ns a chunk dearer: worth knowing when comparing machines.
            logger.notice("libcrypto's direct AEAD path is unavailable or disagrees with its provider; chunks use the provider's ciphers")
        }
        _ = try? Posix.raiseOpenFileLimit()
        let loop = group.next()
        let config = bootstrap.config

        // 1. Descriptors: from the supervisor's attach message, or inherited (no supervisor).
        var listenerFDs = bootstrap.listeners.map(\.fd)
        var replay: AuthIDReplayFilter = GenerationalReplayFilter()
        if let controlFD = bootstrap.controlFD {
            let link = ControlLink(fd: controlFD, logger: logger)
            control = link
            let attachment = try link.receiveAttachment(expectedListeners: bootstrap.listeners.count, timeout: Self.attachTimeout)
            listenerFDs = attachment.listeners
            if let shm = attachment.sharedMemory {
                defer { try? Posix.close(shm) }
                do {
                    let region = try SharedRegion.attach(fd: shm)
                    self.region = region
                    replay = SharedReplayFilter(region: region)
                    if let slot = bootstrap.sharedMemorySlot {
                        let publisher = CounterPublisher(region: region, slot: slot, counters: counters, tracker: tracker)
                        self.publisher = publisher
                        let onlineLevels = StatSwitches(config).onlineLevels
                        if !config.daemon.userLimits.isEmpty || !onlineLevels.isEmpty {
                            userLimiter = UserLimiter(region: region, slot: slot, users: publisher.users,
                                                      policy: config.daemon.userLimits, onlineLevels: onlineLevels)
                        }
                    }
                } catch {
                    for fd in listenerFDs { try? Posix.close(fd) }
                    throw error
                }
            }
        }

        // 2. One server channel per listener.
        guard !config.outbounds.isEmpty else { throw WorkerError.noOutbound }
        // The built-in DNS when the config has a `dns` section or a dns outbound (which then gets V2Ray's
        // default: the system resolver); without either, getaddrinfo as before.
        let needsDNS = config.dns != nil || config.outbounds.contains { if case .dns = $0.settings { true } else { false } }
        let dns = needsDNS ? try DNSResolver(config.dns ?? DNSConfig(), loop: loop, counters: counters) : nil
        dns?.logger = logger
        let made = config.outbounds.map { OutboundFactory.make($0, counters: counters, logger: logger, dns: dns) }
        try OutboundFactory.connectProxies(made, configs: config.outbounds, policy: config.policy, counters: counters, logger: logger)
        let built = CountingOutbound.wrap(made, switches: StatSwitches(config), registry: counters.stats)
        let resolve = dns.map { dns in { dns.routingResolve($0, $1) } } ?? OutboundSelector.systemResolve
        let outbounds: OutboundSelector
        if let routing = config.routing {
            let router = try Router(routing, outboundTags: config.outbounds.map(\.tag))
            outbounds = OutboundSelector(outbounds: built, decide: OutboundSelector.decide(with: router), resolve: resolve)
        } else {
            outbounds = OutboundSelector(outbounds: built, resolve: resolve)
        }
        // V2Ray routes its DNS client's queries like any UDP request, with the DNS section's tag as
        // their inbound tag.
        let dnsTag = config.dns?.tag
        dns?.route = { [unowned outbounds] destination in
            let origin = RequestOrigin(inboundTag: dnsTag)
            // A DoH server given by name, under IPIfNonMatch/IPOnDemand: resolving it would ask this
            // resolver for its own server's address, so it is routed as resolving to nothing (its
            // domain rules decide; IP rules cannot match). An IP address never asks to resolve.
            if case .outbound(let i) = outbounds.choose(destination, origin: origin) { return outbounds.outbounds[i] }
            return outbounds.outbounds[outbounds.chooseAfterResolving(destination, origin: origin, .success([]))]
        }
        // `https://` DNS servers routed to a proxy outbound: carried like proxySettings chains.
        dns?.proxyDial = { [policy = config.policy, counters, logger] outbound in
            try ProxyDial(through: outbound, tag: "dns", policy: policy, counters: counters, logger: logger)
        }
        try LogFiles.openErrorLog(config.log)
        accessLog = AccessLog(config: config.log)
        let shared = InboundFactory.Shared(policy: config.policy, replay: replay, counters: counters,
                                           accessLog: accessLog, logger: logger,
                                           outbounds: outbounds, loop: loop, limits: config.daemon.limits,
                                           statSwitches: StatSwitches(config), userLimiter: userLimiter)
        var remaining = listenerFDs
        do {
            for (listener, fd) in zip(bootstrap.listeners, listenerFDs) {
                remaining.removeFirst()
                if config.inbounds[listener.inbound].stream.network == .kcp {
                    kcpServers.append(try serveKCP(fd: fd, inboundIndex: listener.inbound, config: config, shared: shared, loop: loop))
                    continue
                }
                try serve(fd: fd, inboundIndex: listener.inbound, config: config, shared: shared, loop: loop)
            }
        } catch {
            // Descriptors NIO did not take yet are ours to close; server channels close theirs.
            for fd in remaining { try? Posix.close(fd) }
            for server in servers { server.close(promise: nil) }
            for acceptor in sharedAcceptors { acceptor.close() }
            for kcp in kcpServers { kcp.channel.close(promise: nil) }
            throw error
        }

        // 3. Counters to shared memory, signals, control messages.
        if let publisher {
            loop.execute { publisher.publish() }
            loop.scheduleRepeatedTask(initialDelay: Self.publishInterval, delay: Self.publishInterval) { [userLimiter] _ in
                publisher.publish()
                userLimiter?.refresh()
            }
            LagProbe.start(on: loop, counters: counters)
        }
        installSignals(loop: loop)
        control?.startReceiving(on: .main) { [self] message in handle(message, loop: loop) }
    }

    private func serve(fd: Int32, inboundIndex: Int, config: Config, shared: InboundFactory.Shared,
                       loop: EventLoop) throws {
        let inbound = config.inbounds[inboundIndex]
        let factory = try InboundFactory(index: inboundIndex, inbound: inbound, shared: shared)
        if let ctx = factory.vmess, let tag = inbound.tag { vmessInbounds[tag, default: []].append(ctx) }
        let transport = try InboundTransport(stream: inbound.stream, logger: logger, counters: counters, drain: drainSignal)
        // Behind a PROXY-protocol balancer every connection comes from the balancer: the per-source
        // limit waits for the header's client address (ProxyProtocolHandler, bounded in bytes and time).
        let proxyProtocol = inbound.stream.acceptProxyProtocol
        let tracker = self.tracker
        let logger = self.logger
        let name = inbound.tag ?? inbound.jsonPath
        let connections = counters.stats.connectionMeter(.inbound, name)
        let sockopt = inbound.stream.sockopt
        // A Unix socket (the config's "/path" or "@name", or one systemd passed) has no TCP level
        // (TCP_NODELAY or Fast Open would fail every accepted connection), and is shared by every
        // worker (SharedSocketAcceptor).
        let isTCP = (try? Posix.socketFamily(fd)) != AF_UNIX
        let initialize: (Channel) -> EventLoopFuture<Void> = { channel in
            Self.initializeConnection(channel, tracker: tracker, logger: logger, bySource: !proxyProtocol,
                                      connections: connections) { counter in
                // `sockopt`: set on each accepted socket (nothing when the inbound has none).
                sockopt.apply(to: channel, tcp: isTCP).flatMap {
                    transport.configure(channel, claimSource: { counter.claim($0) }, installProtocol: factory.install)
                }
            }
        }
        let childOptions = { (b: ClientBootstrap) in
            b.channelOption(ChannelOptions.allowRemoteHalfClosure, value: true).proxiedStreamReads()
        }
        if !isTCP {
            let acceptor = try SharedSocketAcceptor(fd: fd, name: name, loop: loop, pause: Self.acceptBackoff, childOptions: childOptions,
                                                    initializer: initialize, onAcceptError: { error in
                loop.execute {
                    tracker.acceptErrors += 1
                    logger.error("accept failed", metadata: ["inbound": "\(name)", "error": "\(error)"])
                }
            })
            sharedAcceptors.append(acceptor)
            if accepting { acceptor.start() }
            logger.info("serving", metadata: ["inbound": "\(name)", "address": "unix socket (shared by all workers)"])
            return
        }
        var bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            // With a supervisor: registered but not accepting until it says `accept` (see
            // ControlMessage.accept). Alone: accepting at once.
            .serverChannelOption(ChannelOptions.autoRead, value: accepting)
            .serverChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(tracker.makeAcceptPauseHandler(
                        pause: Self.acceptBackoff,
                        mayResume: { [self] in accepting && !draining },
                        log: { error, total in
                            logger.error("accept failed; pausing accepts", metadata: [
                                "inbound": "\(name)", "error": "\(error)", "pauseMs": "\(Self.acceptBackoff.nanoseconds / 1_000_000)",
                                "total": "\(total)",
                            ])
                        },
                        otherError: { error in
                            logger.error("accepted connection dropped", metadata: ["inbound": "\(name)", "error": "\(error)"])
                        }))
                }
            }
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelOption(ChannelOptions.recvAllocator, value: StreamReceiveAllocator.adaptive)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: StreamReceiveAllocator.readsPerEvent)
            // tcpOption, not socketOption: at SOL_SOCKET level option 1 is SO_DEBUG (which needs
            // CAP_NET_ADMIN and fails under the hardened unit), not TCP_NODELAY.
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer(initialize)
        // Fast Open lives on the listening socket (shared by every worker; each sets the same value).
        if let queue = sockopt.listenerFastOpenQueue {
            bootstrap = bootstrap.serverChannelOption(ChannelOptions.tcpOption(.init(rawValue: TCP_FASTOPEN)), value: SocketOptionValue(queue))
        }
        let server = try bootstrap
            .withBoundSocket(fd)
            .wait()
        // NIO's withBoundSocket re-listens with a fixed backlog of 128 before options apply; listen
        // again so the accept queue is as deep as the supervisor made it. (The socket is shared with
        // the supervisor and, during a reload, with the next generation's worker: this is the same
        // kernel socket, not a copy.)
        _ = Glibc.listen(fd, 4096)
        logger.info("serving", metadata: ["inbound": "\(name)", "address": "\(server.localAddress?.description ?? "?")"])
        servers.append(server)
    }

    /// Admission (the tracker's limits) and the pipeline of one client connection, for every
    /// inbound kind: `rest` adds the transport and protocol handlers once admitted.
    static func initializeConnection(_ channel: Channel, tracker: ConnectionTracker, logger: Logger, bySource: Bool,
                                     connections: ConnectionMeter? = nil,
                                     rest: (ConnectionTracker.Handler) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        guard let counter = tracker.admit(channel, bySource: bySource, connections: connections) else {
            logger.debug("connection refused: limit reached", metadata: ["peer": "\(channel.remoteAddress?.description ?? "?")"])
            return channel.eventLoop.makeFailedFuture(ConnectionTracker.LimitReached(reason: .connectionLimit))
        }
        do {
            try channel.pipeline.syncOperations.addHandler(counter)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return rest(counter)
    }

    // MARK: control

    /// Runs on the main queue.
    private func handle(_ message: ControlMessage?, loop: EventLoop) {
        switch message {
        case .heartbeat(let sequence)?:
            // Answered from the event loop: the reply proves the loop turns, not just this thread.
            loop.execute { [self] in
                control?.send(.heartbeatReply(sequence: sequence, connections: UInt32(clamping: tracker.open)))
            }
        case .drain(let milliseconds)?:
            loop.execute { [self] in drain(loop: loop, timeout: Double(milliseconds) / 1000, reason: "supervisor") }
        case .stop?:
            loop.execute { [self] in finish(status: 0, why: "stop requested") }
        case .addUser(let tag, let user)?:
            loop.execute { [self] in
                for ctx in vmessInbounds[tag] ?? [] {
                    do { try ctx.add(user) } catch { logger.error("cannot add user", metadata: ["inbound": "\(tag)", "error": "\(error)"]) }
                }
                logger.info("user added", metadata: ["inbound": "\(tag)", "email": "\(user.email ?? "")"])
            }
        case .removeUser(let tag, let email, let disconnect)?:
            loop.execute { [self] in
                let ended = (vmessInbounds[tag] ?? []).reduce(0) { $0 + $1.remove(email: email, disconnect: disconnect) }
                logger.info("user removed", metadata: ["inbound": "\(tag)", "email": "\(email)", "connectionsEnded": "\(ended)"])
            }
        case .reopenLogs?:
            reopenLogs()
        case .accept?:
            loop.execute { [self] in
                guard !draining, !accepting else { return }
                accepting = true
                for server in servers + kcpServers.map(\.channel) { server.setOption(ChannelOptions.autoRead, value: true).whenFailure { [self] error in
                    logger.error("cannot start accepting", metadata: ["error": "\(error)"])
                } }
                for acceptor in sharedAcceptors { acceptor.start() }
                logger.info("accepting", metadata: ["listeners": "\(servers.count + sharedAcceptors.count)"])
            }
        case nil:
            // The supervisor is gone (crashed, or killed): finish what is open, accept nothing new,
            // and do not linger past the drain timeout.
            logger.warning("control socket closed: the supervisor is gone; draining")
            loop.execute { [self] in drain(loop: loop, timeout: defaultDrainTimeout, reason: "supervisor gone") }
        case .some(let other):
            logger.debug("ignoring control message", metadata: ["message": "\(other)"])
        }
    }

    /// logrotate moved the log files (the supervisor's reopenLogs, or SIGUSR1 to this process).
    private func reopenLogs() {
        do {
            try LogFiles.openErrorLog(bootstrap.config.log)
            try accessLog?.reopen()
            logger.info("log files reopened")
        } catch {
            logger.error("cannot reopen the log files", metadata: ["error": "\(error)"])
        }
    }

    private var defaultDrainTimeout: Double { bootstrap.config.daemon.drainTimeout ?? 30 }

    // MARK: signals

    private func installSignals(loop: EventLoop) {
        for sig in [SIGTERM, SIGINT, SIGQUIT, SIGUSR1] { signal(sig, SIG_IGN) }
        func source(_ sig: Int32, _ action: @escaping () -> Void) -> DispatchSourceSignal {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            s.setEventHandler(handler: action)
            s.resume()
            return s
        }
        // SIGTERM/SIGINT also reach workers directly: Ctrl-C goes to the whole foreground process
        // group, and `KillMode=control-group` signals every process. Both mean "drain".
        signalSources = [
            source(SIGTERM) { [self] in loop.execute { self.drain(loop: loop, timeout: self.defaultDrainTimeout, reason: "SIGTERM") } },
            source(SIGINT) { [self] in loop.execute { self.drain(loop: loop, timeout: self.defaultDrainTimeout, reason: "SIGINT") } },
            source(SIGQUIT) { [self] in loop.execute { self.finish(status: 0, why: "SIGQUIT") } },
            // logrotate's postrotate may signal the whole unit (`systemctl kill -s USR1`): without a
            // handler SIGUSR1 would end the worker.
            source(SIGUSR1) { [self] in self.reopenLogs() },
        ]
    }

    // MARK: drain and exit

    /// On the event loop.
    private func drain(loop: EventLoop, timeout: Double, reason: String) {
        guard !draining else { return }
        draining = true
        logger.notice("draining", metadata: ["reason": "\(reason)", "connections": "\(tracker.open)", "timeout": "\(timeout)"])
        // Closing the server channel closes this process's copy of each listening socket only: the
        // supervisor (and the next generation's worker) keep the socket, and with it the connections
        // already queued on it.
        for server in servers { server.close(promise: nil) }
        servers.removeAll()
        drainSignal.begin()
        for acceptor in sharedAcceptors { acceptor.close() }
        sharedAcceptors.removeAll()
        for kcp in kcpServers { kcp.listener.stopAccepting() }
        control?.send(.draining(connections: UInt32(clamping: tracker.open)))
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
        func check() {
            if tracker.open <= 0 {
                finish(status: 0, why: "drained")
            } else if NIODeadline.now() >= deadline {
                finish(status: 0, why: "drain timeout")
            } else {
                loop.scheduleTask(in: .milliseconds(50)) { check() }
            }
        }
        check()
    }

    /// On the event loop (so the counters are consistent): last publish, one log line, exit.
    private func finish(status: Int32, why: String) -> Never {
        publisher?.publish()
        logger.notice("exiting", metadata: [
            "why": "\(why)", "open": "\(tracker.open)", "accepted": "\(tracker.accepted)",
            "up": "\(counters.bytesUp)", "down": "\(counters.bytesDown)",
        ])
        exit(status)
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
