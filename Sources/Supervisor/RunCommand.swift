// `vmessd run` (the default command): validate the config, open (or adopt) the listening sockets,
// spawn one worker per CPU and supervise them — reloads, respawns, drains — until told to stop.

import ArgumentParser
import Foundation
import Logging
import Shared

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve (the default command)."
    )

    static let defaultDrainTimeout = 30.0
    static let defaultDemoPort = 10086

    @Option(name: [.short, .customLong("config")],
            help: "Config file (default: ./config.json, then /etc/vmessd/config.json, else a demo config).")
    var configFile: String?

    @Option(help: "Worker processes (default: the CPUs this process may use).")
    var workers: Int?

    @Option(name: .customLong("drain-timeout"), help: "Seconds a stopping worker may spend finishing open connections.")
    var drainTimeout: Double?

    @Option(help: "Admin socket path for `vmessd ctl` (default: /run/vmessd/admin.sock as root, else $XDG_RUNTIME_DIR/vmessd/admin.sock or /tmp/vmessd-UID/admin.sock).")
    var control: String?

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let drainTimeout, !(drainTimeout >= 0) { throw ValidationError("--drain-timeout must be 0 or more seconds") }
    }

    func run() throws {
        // 1. The config, validated, with the flags folded in (flags win over the "vmessd" object).
        let loaded = try loadRunConfig()
        // Random port allocation (dynamic port): this generation's choice of ports.
        let config = PortAllocation.select(loaded.config, now: Int64(Date().timeIntervalSince1970))
        let overrides = WorkerPool.Overrides(workers: workers, drainTimeout: drainTimeout, control: control)
        let settings: WorkerPool.Settings
        switch RunConfig.settings(config, overrides: overrides) {
        case .success(let s): settings = s
        case .failure(let error):
            printToStderr(error.description)
            throw ExitStatus.configError
        }

        LogSetup.bootstrap(label: "vmessd", level: Logger.Level(config: config.log.level))
        let logger = Logger(label: "vmessd")
        do {
            try LogFiles.openErrorLog(config.log)
        } catch {
            logger.critical("cannot open the error log", metadata: ["error": "\(error)"])
            throw ExitStatus.runtimeFailure
        }

        // 2. Process setup. Signals are blocked before the first worker exists, so no SIGCHLD and no
        // early SIGTERM is lost; the pool's loop reads them from a signalfd.
        let signals = try SignalWaiter.blockHandledSignals()
        let signalFD: Int32
        let launcher: WorkerLauncher
        do {
            signalFD = try signals.makeDescriptor()
            launcher = try WorkerLauncher(executable: try WorkerLauncher.locateExecutable())
        } catch {
            logger.critical("\(error)")
            throw ExitStatus.runtimeFailure
        }
        do {
            let limit = try Posix.raiseOpenFileLimit()
            logger.debug("open file limit", metadata: ["old": "\(limit.old)", "new": "\(limit.new)"])
        } catch {
            logger.warning("cannot raise the open file limit", metadata: ["error": "\(error)"])
        }

        // 3. Sockets: passed by systemd where they match, else one per worker per inbound; kept open
        // for as long as their address stays in the config. Started by an upgrade: the previous
        // binary's sockets, planned against as a reload would (UpgradeHandover).
        let handover: UpgradeHandover?
        do {
            handover = try UpgradeHandover.takeFromEnvironment()
        } catch {
            logger.critical("\(error)")
            throw ExitStatus.runtimeFailure
        }
        let passed = handover?.passedSockets ?? SocketActivation.takeFromEnvironment(logger: logger)
        let plan: ListenerSet.Plan
        do {
            plan = try ListenerSet.plan(config: config, workers: settings.workers, previous: handover?.inheritedListeners(), passed: passed)
        } catch {
            logger.critical("\(error)")
            throw ExitStatus.runtimeFailure
        }
        for inbound in plan.set.inbounds {
            var metadata: Logger.Metadata = [
                "inbound": "\(config.inbounds[inbound.index].jsonPath)",
                "address": "\(inbound.address)",
                "sockets": "\(inbound.fds.count)",
                "activated": "\(inbound.activated)",
            ]
            if let tag = config.inbounds[inbound.index].tag { metadata["tag"] = "\(tag)" }
            logger.notice("listening", metadata: metadata)
        }
        for note in plan.notes { logger.warning("\(note)") }
        let used = Set(plan.set.inbounds.flatMap(\.passed))
        for socket in passed where !used.contains(socket.fd) {
            logger.warning("a socket passed by systemd matches no inbound; left unused", metadata: [
                "fd": "\(socket.fd)", "name": "\(socket.name ?? "-")", "address": "\(socket.address.map { "\($0)" } ?? "-")",
            ])
        }
        if loaded.isDemo {
            var shown = config
            for inbound in plan.set.inbounds { shown.inbounds[inbound.index].port = inbound.address.port }
            printDemo(shown, logger: logger)
        }

        // 4. Shared memory (replay filter, counters), the admin socket, then the workers. READY=1
        // comes from the pool once every worker has reported ready over its control socket.
        let region: SharedRegion
        do {
            region = try handover.map { try SharedRegion.adopt(fd: $0.sharedMemory) } ?? SharedRegion.create()
        } catch {
            plan.abandon()
            logger.critical("cannot create the shared-memory region", metadata: ["error": "\(error)"])
            throw ExitStatus.runtimeFailure
        }
        let notifier = Notifier(logger: logger)
        let pool = WorkerPool(launcher: launcher, notifier: notifier, logger: logger, region: region, signalFD: signalFD,
                              configPath: loaded.isDemo ? nil : config.sourceFile, overrides: overrides, passed: passed,
                              config: config, settings: settings)
        pool.loadedConfig = loaded.config
        pool.selfExecutable = try? Posix.executablePath()
        pool.commandLine = Array(CommandLine.arguments.dropFirst())
        if let handover {
            logger.notice("started by a binary upgrade; serving the previous supervisor's sockets", metadata: [
                "listeners": "\(handover.listeners.count)",
            ])
            // The old supervisor drains and exits once this one's first generation serves.
            if let go = handover.go {
                try? Posix.setNonBlocking(go)
                pool.upgradeGate = UpgradeGate.Receiver(waitingFD: go, deadline: nil)
            }
            pool.onFirstServing = {
                _ = "ready\n".withCString { write(handover.ready, $0, 6) }
                try? Posix.close(handover.ready)
            }
        }
        // Users added and removed at runtime: the previous supervisor's at an upgrade, else an earlier
        // run's from the state directory (API, `vmessd ctl users`).
        let inheritedUsers: RuntimeUsers?
        do {
            inheritedUsers = try handover?.takeRuntimeUsers()
        } catch {
            plan.abandon()
            logger.critical("cannot read the runtime users handed over", metadata: ["error": "\(error)"])
            throw ExitStatus.runtimeFailure
        }
        if let inheritedUsers {
            pool.runtimeUsers = inheritedUsers
            pool.userStore = RuntimeUserStore.locate(config.daemon)
        } else if let store = RuntimeUserStore.locate(config.daemon) {
            do {
                pool.runtimeUsers = try store.load()
                pool.userStore = store
                logger.info("runtime users", metadata: ["path": "\(store.path)", "inbounds": "\(pool.runtimeUsers.inbounds.count)"])
            } catch {
                plan.abandon()
                logger.critical("cannot read the runtime users", metadata: ["error": "\(error)"])
                throw ExitStatus.runtimeFailure
            }
        }
        do {
            try pool.startAPI(config.api)
        } catch {
            plan.abandon()
            logger.critical("cannot start the gRPC API", metadata: ["error": "\(error)"])
            throw ExitStatus.runtimeFailure
        }
        do {
            try pool.startMetrics(config.daemon.metrics)
        } catch {
            plan.abandon()
            logger.critical("cannot start the metrics endpoint", metadata: ["error": "\(error)"])
            throw ExitStatus.runtimeFailure
        }
        let adminPath = AdminSocketPath.resolve(flag: control, config: config.daemon.control)
        do {
            pool.admin = try handover?.admin.map { try AdminServer(adopting: $0, path: adminPath, logger: logger) }
                ?? AdminServer(path: adminPath, logger: logger)
            logger.info("admin socket", metadata: ["path": "\(adminPath)"])
        } catch {
            // Serving matters more than being controllable: say so loudly and carry on.
            logger.error("no admin socket; `vmessd ctl` will not reach this process", metadata: [
                "path": "\(adminPath)", "error": "\(error)",
            ])
        }

        let status = pool.run(initial: plan)
        logger.notice("vmessd stopped", metadata: ["status": "\(status)"])
        if status != 0 { throw ExitCode(status) }
    }

    // MARK: steps

    /// The config named by -c, found by ConfigLocator, or the demo; checked for what `run` needs beyond
    /// the parser's validation. Any problem: message on stderr, exit 23.
    private func loadRunConfig() throws -> (config: Config, isDemo: Bool) {
        let config: Config
        var isDemo = false
        switch ConfigLocator().locate(explicit: configFile) {
        case .file(let path):
            config = try loadConfig(at: path)
        case .demo:
            config = ConfigParser.demo(uuid: UUID().uuidString.lowercased(), port: try demoPort())
            isDemo = true
        }
        let problems = RunConfig.problems(config)
        if !problems.isEmpty {
            for problem in problems { printToStderr("\(config.sourceFile): \(problem)") }
            throw ExitStatus.configError
        }
        return (config, isDemo)
    }

    private func demoPort() throws -> Int {
        guard let text = ProcessInfo.processInfo.environment["VMESSD_DEMO_PORT"] else { return Self.defaultDemoPort }
        guard let port = Int(text), (0...65535).contains(port) else {
            printError("VMESSD_DEMO_PORT=\(text) is not a port number 0-65535")
            throw ExitStatus.configError
        }
        return port
    }

    /// The demo's user ID and share link on stdout (what a person pastes into a client), the
    /// explanation on stderr with the logs.
    private func printDemo(_ config: Config, logger: Logger) {
        logger.notice("no config file found; serving the embedded demo config", metadata: [
            "looked": "\(ConfigLocator.defaultPaths.joined(separator: ","))",
        ])
        if case .vmess(let settings)? = config.inbounds.first?.settings, let user = settings.users.first {
            printNow(user.id)
        }
        for link in shareLinks(for: config, address: nil) { printNow(link) }
    }
}
