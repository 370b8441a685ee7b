// v4 `api` and `stats` (V2Ray's infra/conf APIConfig and StatsConfig; Xray's `api.listen`), and the
// step that turns V2Ray's way of exposing the API (a dokodemo-door inbound routed to `api.tag`)
// into listeners of the supervisor's gRPC server (APIConfig).

extension ConfigParser {
    /// Services V2Ray or Xray know that vmessd does not serve.
    static let unsupportedAPIServices: Set<String> = ["reflectionservice", "routingservice", "observatoryservice"]

    /// `{tag, services: [...], listen: "host:port"}`; service names case-insensitive, as V2Ray reads them.
    static func readAPIV4(_ node: ConfigNode) throws -> APIConfig {
        var r = try node.object()
        var api = APIConfig()
        if let tag = r.take("tag") {
            let text = try tag.string()
            api.tag = text.isEmpty ? nil : text
        }
        if let services = r.take("services") {
            for item in try services.array() {
                let name = try item.string()
                if let service = APIConfig.Service.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) {
                    if !api.services.contains(service) { api.services.append(service) }
                } else if unsupportedAPIServices.contains(name.lowercased()) {
                    throw item.error("API service \(JSONC.quote(name)) is not supported by vmessd yet")
                } else {
                    throw item.mismatch("one of HandlerService, StatsService, LoggerService")
                }
            }
        }
        if let listen = r.take("listen") {
            let (host, port) = try readRedirect(listen)
            guard let port else { throw listen.mismatch("\"host:port\" with a port 1-65535") }
            api.listeners.append(.init(host: host ?? "127.0.0.1", port: port, jsonPath: listen.path.description))
        }
        try r.finish()
        return api
    }

    /// `"stats": {}`: V2Ray's StatsConfig has no fields.
    static func readStats(_ node: ConfigNode) throws {
        var r = try node.object()
        try r.finish()
    }

    /// Moves the API's dokodemo-door inbounds out of the inbounds (they become the gRPC server's
    /// listeners) together with the rules routing them to `api.tag`, which name no real outbound.
    /// A rule to `api.tag` must only name inbounds by tag, and only dokodemo-door ones.
    static func extractAPIInbounds(_ config: inout Config, file: String) throws {
        guard var api = config.api else { return }
        defer { config.api = api }
        guard let tag = api.tag else {
            guard !api.listeners.isEmpty else {
                throw ConfigError(file: file, path: "api", reason: "the API needs a \"tag\" (routed to by a dokodemo-door inbound) or a \"listen\" address")
            }
            return
        }
        if config.outbounds.contains(where: { $0.tag == tag }) {
            throw ConfigError(file: file, path: "api.tag", reason: "an outbound already has tag \(JSONC.quote(tag)); the API's tag must be its own")
        }
        var apiInboundTags = Set<String>()
        if var routing = config.routing {
            var kept: [RoutingRule] = []
            for rule in routing.rules {
                guard rule.target == .outbound(tag) else { kept.append(rule); continue }
                var conditionless = rule
                conditionless.inboundTags = nil
                guard let tags = rule.inboundTags, !conditionless.hasCondition else {
                    throw ConfigError(file: file, path: rule.jsonPath,
                                      reason: "a rule to the API (\(JSONC.quote(tag))) may only name inbounds with \"inboundTag\"")
                }
                apiInboundTags.formUnion(tags)
            }
            routing.rules = kept
            config.routing = routing
        }
        var inbounds: [InboundConfig] = []
        for inbound in config.inbounds {
            guard let t = inbound.tag, apiInboundTags.contains(t) else { inbounds.append(inbound); continue }
            guard case .dokodemo = inbound.settings else {
                throw ConfigError(file: file, path: inbound.jsonPath,
                                  reason: "inbound \(JSONC.quote(t)) is routed to the API; it must be a dokodemo-door inbound")
            }
            api.listeners.append(.init(host: inbound.listen, port: inbound.port, jsonPath: inbound.jsonPath))
        }
        for t in apiInboundTags.sorted() where !config.inbounds.contains(where: { $0.tag == t }) {
            throw ConfigError(file: file, path: "routing", reason: "a rule routes inbound \(JSONC.quote(t)) to the API, but no inbound has that tag")
        }
        config.inbounds = inbounds
        guard !api.listeners.isEmpty else {
            throw ConfigError(file: file, path: "api",
                              reason: "no inbound is routed to the API's tag \(JSONC.quote(tag)) and there is no \"listen\": the API would be unreachable")
        }
    }

    /// Stat names are kept whole in shared memory: a tag or email that would make a longer name is refused.
    static func checkStatNames(_ config: Config, file: String) throws {
        guard config.statsEnabled else { return }
        for inbound in config.inbounds {
            if let tag = inbound.tag, !StatName.fits(tag) {
                throw ConfigError(file: file, path: inbound.jsonPath + ".tag", reason: "tag too long for a statistics name (at most \(StatName.maximumPartBytes) bytes)")
            }
            guard case .vmess(let settings) = inbound.settings else { continue }
            for (i, user) in settings.users.enumerated() {
                if let email = user.email, !StatName.fits(email) {
                    throw ConfigError(file: file, path: "\(inbound.jsonPath).settings.clients[\(i)].email",
                                      reason: "email too long for a statistics name (at most \(StatName.maximumPartBytes) bytes)")
                }
            }
        }
        for outbound in config.outbounds {
            if let tag = outbound.tag, !StatName.fits(tag) {
                throw ConfigError(file: file, path: outbound.jsonPath + ".tag", reason: "tag too long for a statistics name (at most \(StatName.maximumPartBytes) bytes)")
            }
        }
    }
}
