// Entry points of the config layer: bytes → JSONC value tree → validated `Config`.
//
// The parser is strict in one direction: every key it does not implement is an error naming the key,
// because a silently ignored setting is one the operator believes is in force. The few keys that are
// accepted and ignored are client-only hints or no-ops, and each such place says so in a comment.
//
// The only I/O is reading the config file (parse(fileAt:)) and the TLS certificate/key files it names.

public enum ConfigParser {
    /// A config file larger than this is a mistake (or /dev/zero), not a config.
    static let maximumFileSize = 16 << 20

    /// Reads and validates a file. The format (v4 or v5) is detected from the content, see `detectFormat`.
    /// `geodata`: where geoip.dat/geosite.dat and `ext:` files are looked up (tests inject their own).
    public static func parse(fileAt path: String, geodata: GeoDataLocator = .standard()) throws -> Config {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.load(path, limit: maximumFileSize)
        } catch let failure as FileContents.Failure {
            throw ConfigError(file: path, path: "", reason: "cannot read config file: \(failure.reason)")
        }
        return try parse(bytes: bytes, sourceFile: path, geodata: geodata)
    }

    public static func parse(text: String, sourceFile: String, geodata: GeoDataLocator = .standard()) throws -> Config {
        try parse(bytes: Array(text.utf8), sourceFile: sourceFile, geodata: geodata)
    }

    static func parse(bytes: [UInt8], sourceFile: String, geodata: GeoDataLocator = .standard()) throws -> Config {
        let tree: JSONValue?
        do {
            tree = try JSONC.parse(bytes)
        } catch let error as JSONC.SyntaxError {
            throw ConfigError(file: sourceFile, path: "", line: error.line, column: error.column, reason: error.reason)
        }
        guard let tree else {
            throw ConfigError(file: sourceFile, path: "", reason: "the file is empty (no JSON value)")
        }
        let format = detectFormat(tree)
        let root = ConfigNode(value: tree, path: .root, file: sourceFile, numbersMayBeStrings: format == .v5)
        return try readRoot(root, format: format, geodata: geodata)
    }

    /// The embedded demo config used by `vmessd run` without -c: one v4 vmess inbound on 127.0.0.1:port
    /// for `uuid` (security "auto": the client picks, AEAD header since alterId is 0) and a freedom outbound.
    public static func demo(uuid: String, port: Int) -> Config {
        let user = VMessUser(id: canonicalUUID(uuid) ?? uuid.lowercased(), alterId: 0, security: "auto")
        let inbound = InboundConfig(tag: "demo", listen: "127.0.0.1", port: port,
                                    settings: .vmess(VMessInboundSettings(users: [user])), jsonPath: "inbounds[0]")
        let outbound = OutboundConfig(tag: "direct", settings: .freedom(FreedomSettings()), jsonPath: "outbounds[0]")
        return Config(sourceFile: "<embedded demo>", format: .v4, inbounds: [inbound], outbounds: [outbound])
    }

    // MARK: format detection

    /// v5 if any of these v5-only shapes appears, else v4:
    /// - an inbound whose `settings.users` is an array of strings (v5 vmess; v4 has `clients` objects);
    /// - an inbound or outbound `streamSettings` with `transport`, `transportSettings` or `securitySettings`
    ///   (v4 says `network`, `wsSettings`, `tlsSettings`…);
    /// - a `log` whose `error` or `access` is an object (v4 has path strings there).
    /// A file mixing both then fails on the first key foreign to the detected format, which names it.
    static func detectFormat(_ tree: JSONValue) -> ConfigFormat {
        guard case .object(let root) = tree else { return .v4 }
        if case .object(let log)? = root["log"] {
            for key in ["error", "access"] {
                if case .object? = log[key] { return .v5 }
            }
        }
        for listKey in ["inbounds", "outbounds"] {
            guard case .array(let items)? = root[listKey] else { continue }
            for case .object(let item) in items {
                if listKey == "inbounds", case .object(let settings)? = item["settings"],
                   case .array(let users)? = settings["users"],
                   users.allSatisfy({ if case .string = $0 { true } else { false } }) {
                    return .v5
                }
                if case .object(let stream)? = item["streamSettings"],
                   stream.members.contains(where: { ["transport", "transportSettings", "securitySettings"].contains($0.key) }) {
                    return .v5
                }
            }
        }
        return .v4
    }

    // MARK: top level

    /// V2Ray top-level keys (v4 and v5) that vmessd knows but does not implement.
    static let unsupportedTopLevel: Set<String> = [
        "transport", "reverse", "fakedns", "fakeDns",
        "browserForwarder", "observatory", "burstObservatory", "multiObservatory", "services", "extension",
        "port", "inbound", "outbound", "inboundDetour", "outboundDetour",
    ]

    static func readRoot(_ root: ConfigNode, format: ConfigFormat, geodata: GeoDataLocator = .standard()) throws -> Config {
        var r = try root.object()
        // Take every supported section first, so an unsupported section is reported before any detail
        // inside the supported ones: "routing is not supported" is the more useful first message.
        let log = r.take("log")
        let inbounds = r.take("inbounds")
        let outbounds = r.take("outbounds")
        let policy = r.take("policy")
        let daemon = r.take("vmessd")
        // v4 `routing` and v5 `router` are different spellings, so each is read by its own format's
        // reader whatever the detected format; both at once would be two routing tables.
        let routingV4 = r.take("routing")
        let routerV5 = r.take("router")
        let dns = r.take("dns")
        let api = r.take("api")
        let stats = r.take("stats")
        // v5 only: stats, policy and the API are services there (v4 has no such key).
        let servicesV5 = format == .v5 ? r.take("services") : nil
        // Every error that can be found in one run: each section (and each item of the lists in
        // them) is read even when an earlier one failed; what depends on a failed part is skipped.
        var errors = ConfigErrorCollector()
        _ = try errors.attempt { try r.finish(unsupported: unsupportedTopLevel) }

        var config = Config(sourceFile: root.file, format: format, inbounds: [], outbounds: [])
        if let log, let value = try errors.attempt({ try format == .v4 ? readLogV4(log) : readLogV5(log) }) {
            config.log = value
        }
        // One cache for the whole config: a geosite file named by several sections is read once.
        let geodataCache = GeoDataCache(locator: geodata)
        if let inbounds, var value = try errors.attempt({ try readInbounds(inbounds, format: format, geodata: geodataCache) }) {
            _ = try errors.attempt { try applyDetours(&value, file: root.file) }
            config.inbounds = value
        }
        var outboundsRead = true
        if let outbounds {
            if let value = try errors.attempt({ try readOutbounds(outbounds, format: format) }) {
                config.outbounds = value
            } else {
                outboundsRead = false
            }
        }
        if let api, let value = try errors.attempt({ () throws -> APIConfig in
            guard format == .v4 else { throw api.error("the v5 API section is not supported by vmessd yet; use the v4 form") }
            return try readAPIV4(api)
        }) {
            config.api = value
        }
        if let stats, try errors.attempt({ try readStats(stats) }) != nil { config.statsEnabled = true }
        var policyV5: PolicyConfig?
        if let servicesV5, let services = try errors.attempt({ try readServicesV5(servicesV5) }) {
            if services.stats { config.statsEnabled = true }
            if let api = services.api {
                if config.api != nil {
                    _ = try errors.attempt { throw servicesV5.error("\"api\" and the v5 service \"commander\" both present; keep one") }
                } else {
                    config.api = api
                }
            }
            policyV5 = services.policy
        }
        if config.outbounds.isEmpty {
            // V2Ray refuses to start without an outbound; vmessd is lenient and uses the one outbound
            // such a config would almost certainly have meant: direct connections.
            config.outbounds = [OutboundConfig(settings: .freedom(FreedomSettings()), jsonPath: "outbounds")]
        }
        // After the outbounds: rules and balancers name them (unknown while the outbounds failed).
        var routingRead = true
        if let routingV4, routerV5 != nil {
            _ = try errors.attempt { throw routingV4.error("\"routing\" (v4) and \"router\" (v5) both present; keep one") }
            routingRead = false
        } else if outboundsRead, let routing = routingV4 ?? routerV5 {
            if let value = try errors.attempt({
                try routingV4 != nil ? readRoutingV4(routing, outbounds: config.outbounds, apiTag: config.api?.tag, geodata: geodataCache)
                    : readRouterV5(routing, outbounds: config.outbounds, apiTag: config.api?.tag, geodata: geodataCache)
            }) {
                config.routing = value
            } else {
                routingRead = false
            }
        }
        if config.api != nil, outboundsRead, routingRead {
            _ = try errors.attempt { try extractAPIInbounds(&config, file: root.file) }
        }
        _ = try errors.attempt { try checkDokodemoPorts(config, file: root.file) }
        if let dns, let value = try errors.attempt({
            try format == .v4 ? readDNSV4(dns, geodata: geodataCache) : readDNSV5(dns, geodata: geodataCache)
        }) {
            config.dns = value
            if outboundsRead && routingRead { _ = try errors.attempt { try checkDNSQueryRouting(config, dns) } }
        }
        if let policy, let value = try errors.attempt({ try readPolicy(policy) }) {
            config.policy = value
            if policyV5 != nil {
                _ = try errors.attempt { throw policy.error("\"policy\" and the v5 service \"policy\" both present; keep one") }
            }
        } else if let policyV5 {
            config.policy = policyV5
        }
        _ = try errors.attempt { try checkStatNames(config, file: root.file) }
        if let daemon, let value = try errors.attempt({ try readDaemonSettings(daemon) }) {
            config.daemon = value
        }
        try errors.finish()
        return config
    }

    /// Top-level `"vmessd"`: {workers: int >= 1, drainTimeout: seconds >= 0, control: socket path,
    /// limits: {connectionsPerWorker, connectionsPerSource: int >= 1, udpDatagramToClient: 1-65507},
    /// userLimits (UserLimitPolicy), stateDirectory, removedUsers,
    /// metrics: {listen, userLabels} (ConfigParser+Metrics)}.
    static func readDaemonSettings(_ node: ConfigNode) throws -> DaemonSettings {
        var r = try node.object()
        var settings = DaemonSettings()
        settings.workers = try r.take("workers")?.int(1...Int.max)
        settings.drainTimeout = try r.take("drainTimeout")?.double(atLeast: 0)
        if let control = r.take("control") {
            let path = try control.string()
            guard !path.isEmpty, !path.utf8.contains(0) else { throw control.mismatch("a socket path") }
            settings.control = path
        }
        if let limits = r.take("limits") {
            var l = try limits.object()
            settings.limits.connectionsPerWorker = try l.take("connectionsPerWorker")?.int(1...(1 << 24))
                ?? settings.limits.connectionsPerWorker
            settings.limits.connectionsPerSource = try l.take("connectionsPerSource")?.int(1...(1 << 24))
                ?? settings.limits.connectionsPerSource
            settings.limits.udpDatagramToClient = try l.take("udpDatagramToClient")?.int(1...65_507)
                ?? settings.limits.udpDatagramToClient
            settings.limits.waitingBytesPerWorker = try l.take("waitingBytesPerWorker")?.int(ClientLimits.waitingBytesPerWorkerRange)
                ?? settings.limits.waitingBytesPerWorker
            try l.finish()
        }
        if let limits = r.take("userLimits") {
            settings.userLimits = try readUserLimitPolicy(limits)
        }
        if let directory = r.take("stateDirectory") {
            let path = try directory.string()
            guard path.hasPrefix("/"), !path.utf8.contains(0) else { throw directory.mismatch("an absolute directory path") }
            settings.stateDirectory = path
        }
        if let metrics = r.take("metrics") { settings.metrics = try readMetrics(metrics) }
        if let removed = r.take("removedUsers") {
            switch try removed.string() {
            case "disconnect": settings.disconnectRemovedUsers = true
            case "finish": settings.disconnectRemovedUsers = false
            default: throw removed.mismatch("\"disconnect\" or \"finish\"")
            }
        }
        try r.finish()
        return settings
    }
}

extension Config {
    /// `vmessd run` needs something to serve; V2Ray itself accepts a config without inbounds.
    public func requireInbound() throws {
        if inbounds.isEmpty {
            throw ConfigError(file: sourceFile, path: "inbounds", reason: "no inbounds")
        }
    }
}
