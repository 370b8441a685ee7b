// `vmessd run` (the default command): validate the config, open the listening sockets, spawn one
// worker per CPU and supervise them until told to stop.

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

    @Option(help: "Admin socket path (reserved: the admin socket comes in a later release).")
    var control: String?

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let drainTimeout, !(drainTimeout >= 0) { throw ValidationError("--drain-timeout must be 0 or more seconds") }
    }

    func run() throws {
        // 1. The config, validated, with the flags folded in (flags win over the "vmessd" object).
        let loaded = try loadRunConfig()
        var config = loaded.config
        let isDemo = loaded.isDemo
        let settings = try effectiveSettings(config)
        config.daemon.workers = settings.workers
        config.daemon.drainTimeout = settings.drainTimeout
        config.daemon.control = settings.control

        LogSetup.bootstrap(label: "vmessd", level: Logger.Level(config: config.log.level))
        let logger = Logger(label: "vmessd")

        // 2. Process setup. Signals are blocked before the first worker exists, so no SIGCHLD and no
        // early SIGTERM is lost; they are then taken one at a time by the pool's loop.
        let signals = try SignalWaiter.blockHandledSignals()
        let launcher: WorkerLauncher
        do {
            launcher = WorkerLauncher(executable: try WorkerLauncher.locateExecutable())
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

        // 3. Sockets: one per worker per inbound; kept open for the supervisor's whole life.
        let listeners: ListenerSet
        do {
            listeners = try ListenerSet.open(config: config, perInbound: settings.workers)
        } catch {
            logger.critical("\(error)")
            throw ExitStatus.runtimeFailure
        }
        for inbound in listeners.inbounds {
            // A port-0 inbound now has a real port: logs, links and the workers all see that one.
            config.inbounds[inbound.index].port = inbound.address.port
            var metadata: Logger.Metadata = [
                "inbound": "\(config.inbounds[inbound.index].jsonPath)",
                "address": "\(inbound.address)",
                "sockets": "\(inbound.fds.count)",
            ]
            if let tag = config.inbounds[inbound.index].tag { metadata["tag"] = "\(tag)" }
            logger.notice("listening", metadata: metadata)
        }
        if isDemo { printDemo(config, logger: logger) }

        // 4. Workers, then readiness, then supervision until the last worker is gone.
        let notifier = Notifier(logger: logger)
        let pool = WorkerPool(launcher: launcher, listeners: listeners, config: config,
                              drainTimeout: settings.drainTimeout, notifier: notifier, signals: signals, logger: logger)
        do {
            try pool.start(count: settings.workers, generation: 1)
        } catch {
            throw ExitStatus.runtimeFailure
        }
        let addresses = listeners.inbounds.map { "\($0.address)" }.joined(separator: " ")
        notifier.ready(status: "serving \(addresses) with \(settings.workers) workers")
        logger.notice("vmessd started", metadata: ["workers": "\(settings.workers)", "config": "\(config.sourceFile)"])

        let status = pool.superviseUntilExit()
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
        var problems: [String] = []
        if config.inbounds.isEmpty {
            problems.append("no inbounds: vmessd needs at least one inbound to serve")
        }
        problems += unservedTransportProblems(config)
        problems += ListenerSet.duplicateAddresses(in: config)
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

    struct Settings {
        var workers: Int
        var drainTimeout: Double
        var control: String?
    }

    /// Flags, else the config's "vmessd" object, else defaults.
    private func effectiveSettings(_ config: Config) throws -> Settings {
        let workers = self.workers ?? config.daemon.workers ?? Posix.availableCPUCount()
        guard workers >= 1 else {
            printToStderr("\(config.sourceFile): vmessd.workers: must be at least 1, got \(workers)")
            throw ExitStatus.configError
        }
        let drainTimeout = self.drainTimeout ?? config.daemon.drainTimeout ?? Self.defaultDrainTimeout
        guard drainTimeout >= 0 else {
            printToStderr("\(config.sourceFile): vmessd.drainTimeout: must be 0 or more seconds, got \(drainTimeout)")
            throw ExitStatus.configError
        }
        return Settings(workers: workers, drainTimeout: drainTimeout, control: control ?? config.daemon.control)
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
