// v5 `services` (v2fly's jsonv5: one object per service, keyed by its short name), the parts vmessd
// serves:
//
//   {stats: {},
//    policy: {level: {"0": {timeout: {handshake: {value: 4}, connectionIdle: {value: 300},
//                                     uplinkOnly: {value: 1}, downlinkOnly: {value: 1}},
//                           stats: {userUplink, userDownlink}, buffer: {connection: bytes}}},
//             system: {stats: {inboundUplink, inboundDownlink, outboundUplink, outboundDownlink}}},
//    commander: {tag: "api", name: ["stats", "proxyman"]}}
//
// The commander's services are named by their v5 short names: "stats" is StatsService, "proxyman"
// HandlerService (v5 has no name for LoggerService). Its tag is routed to like v4's `api.tag`.

extension ConfigParser {
    struct ServicesV5 {
        var stats = false
        var policy: PolicyConfig?
        var api: APIConfig?
    }

    /// v5 short names of the gRPC services vmessd serves, and of those it does not.
    static let grpcServicesV5: [String: APIConfig.Service] = ["stats": .stats, "proxyman": .handler]
    static let unsupportedGRPCServicesV5: Set<String> = ["reflection", "router", "observatory", "instman", "subscriptionmanager"]

    static func readServicesV5(_ node: ConfigNode) throws -> ServicesV5 {
        var r = try node.object()
        var services = ServicesV5()
        for (name, member) in r.takeAll() {
            switch name {
            case "stats": try readStats(member); services.stats = true
            case "policy": services.policy = try readPolicyV5(member)
            case "commander": services.api = try readCommanderV5(member)
            default: throw member.error("the v5 service \(JSONC.quote(name)) is not supported by vmessd")
            }
        }
        try r.finish()
        return services
    }

    static func readCommanderV5(_ node: ConfigNode) throws -> APIConfig {
        var r = try node.object(protoNames: true)
        var api = APIConfig()
        let tag = try r.require("tag")
        let text = try tag.string()
        guard !text.isEmpty else { throw tag.error("the commander needs a tag (routed to by a dokodemo-door inbound)") }
        api.tag = text
        for item in try r.take("name")?.array() ?? [] {
            let name = try item.string()
            if let service = grpcServicesV5[name] {
                if !api.services.contains(service) { api.services.append(service) }
            } else if unsupportedGRPCServicesV5.contains(name) {
                throw item.error("the v5 gRPC service \(JSONC.quote(name)) is not supported by vmessd")
            } else {
                throw item.mismatch("\"stats\" or \"proxyman\"")
            }
        }
        try r.finish()
        return api
    }

    static func readPolicyV5(_ node: ConfigNode) throws -> PolicyConfig {
        var r = try node.object(protoNames: true)
        var policy = PolicyConfig()
        if let levels = r.take("level") {
            var l = try levels.object()
            for (key, member) in l.takeAll() {
                policy.levels[try readLevelKey(key, member)] = try readLevelPolicyV5(member)
            }
            try l.finish()
        }
        if let system = r.take("system") {
            var s = try system.object(protoNames: true)
            if let stats = s.take("stats") {
                var t = try stats.object(protoNames: true)
                policy.system.statsInboundUplink = try t.take("inboundUplink")?.bool() ?? false
                policy.system.statsInboundDownlink = try t.take("inboundDownlink")?.bool() ?? false
                policy.system.statsOutboundUplink = try t.take("outboundUplink")?.bool() ?? false
                policy.system.statsOutboundDownlink = try t.take("outboundDownlink")?.bool() ?? false
                try t.finish()
            }
            try refuseOverrideAccessLogDest(&s)
            try s.finish()
        }
        try r.finish()
        return policy
    }

    /// Timeouts as `{value: seconds}` messages, the buffer in bytes (v4: KiB).
    static func readLevelPolicyV5(_ node: ConfigNode) throws -> LevelPolicy {
        var r = try node.object(protoNames: true)
        var level = LevelPolicy()
        if let timeout = r.take("timeout") {
            var t = try timeout.object(protoNames: true)
            func seconds(_ key: String) throws -> Int? {
                guard let second = t.take(key) else { return nil }
                var s = try second.object(protoNames: true)
                let value = try s.take("value")?.int(levelRange) ?? 0
                try s.finish()
                return value
            }
            level.handshake = try seconds("handshake") ?? level.handshake
            level.connIdle = try seconds("connectionIdle") ?? level.connIdle
            level.uplinkOnly = try seconds("uplinkOnly") ?? level.uplinkOnly
            level.downlinkOnly = try seconds("downlinkOnly") ?? level.downlinkOnly
            try t.finish()
        }
        if let stats = r.take("stats") {
            var s = try stats.object(protoNames: true)
            level.statsUserUplink = try s.take("userUplink")?.bool() ?? false
            level.statsUserDownlink = try s.take("userDownlink")?.bool() ?? false
            try s.finish()
        }
        if let buffer = r.take("buffer") {
            var b = try buffer.object(protoNames: true)
            // V2Ray reads -1 as unbounded; vmessd keeps every buffer bounded.
            if let bytes = try b.take("connection")?.int(0...Int(Int32.max)) { level.bufferSize = (bytes + 1023) / 1024 }
            try b.finish()
        }
        try r.finish()
        return level
    }
}
