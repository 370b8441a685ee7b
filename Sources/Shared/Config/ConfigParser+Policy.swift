// `policy`: per-level timeouts, buffer size and statistics switches ({levels: {"0": {...}}}), and the
// per-inbound/outbound statistics switches of `system`. The counters the switches ask for are kept
// only with `"stats": {}` (StatSwitches), as in the reference, and served by the gRPC API.

extension ConfigParser {
    static func readPolicy(_ node: ConfigNode) throws -> PolicyConfig {
        var r = try node.object()
        var policy = PolicyConfig()
        if let levels = r.take("levels") {
            var l = try levels.object()
            for (key, member) in l.takeAll() {
                let level = try readLevelKey(key, member)
                guard policy.levels[level] == nil else {
                    throw member.error("level \(level) appears twice")
                }
                policy.levels[level] = try readLevelPolicy(member)
            }
            try l.finish()
        }
        if let system = r.take("system") {
            var s = try system.object()
            policy.system.statsInboundUplink = try s.take("statsInboundUplink")?.bool() ?? false
            policy.system.statsInboundDownlink = try s.take("statsInboundDownlink")?.bool() ?? false
            policy.system.statsOutboundUplink = try s.take("statsOutboundUplink")?.bool() ?? false
            policy.system.statsOutboundDownlink = try s.take("statsOutboundDownlink")?.bool() ?? false
            try refuseOverrideAccessLogDest(&s)
            try s.finish()
        }
        try r.finish()
        return policy
    }

    /// Xray's `overrideAccessLogDest` (v4 policy.system, v5 policy service): the access log would show
    /// the destination after sniffing; vmessd logs the requested one, so `true` is refused.
    static func refuseOverrideAccessLogDest(_ s: inout ObjectReader) throws {
        if let flag = s.take("overrideAccessLogDest"), try flag.bool() {
            throw flag.error("\"overrideAccessLogDest\": true is not supported by vmessd yet")
        }
    }

    /// A user level as an object key ("0"): a decimal uint32, as V2Ray's policy and vmessd's userLimits take it.
    static func readLevelKey(_ key: String, _ member: ConfigNode) throws -> Int {
        guard !key.isEmpty, key.allSatisfy({ $0.isASCII && $0.isNumber }), let level = Int(key), levelRange.contains(level) else {
            throw member.error("a level key must be a decimal number 0-\(UInt32.max), got \(JSONC.quote(key))")
        }
        return level
    }

    /// Seconds as uint32, bufferSize in KiB. V2Ray reads a negative bufferSize as "unbounded"; vmessd
    /// keeps every buffer bounded, so it is refused. The upper bound keeps size × 1024 within int32, as
    /// V2Ray computes it.
    static func readLevelPolicy(_ node: ConfigNode) throws -> LevelPolicy {
        var r = try node.object()
        var level = LevelPolicy()
        level.handshake = try r.take("handshake")?.int(levelRange) ?? level.handshake
        level.connIdle = try r.take("connIdle")?.int(levelRange) ?? level.connIdle
        level.uplinkOnly = try r.take("uplinkOnly")?.int(levelRange) ?? level.uplinkOnly
        level.downlinkOnly = try r.take("downlinkOnly")?.int(levelRange) ?? level.downlinkOnly
        level.bufferSize = try r.take("bufferSize")?.int(0...(Int(Int32.max) / 1024)) ?? level.bufferSize
        level.statsUserUplink = try r.take("statsUserUplink")?.bool() ?? false
        level.statsUserDownlink = try r.take("statsUserDownlink")?.bool() ?? false
        level.statsUserOnline = try r.take("statsUserOnline")?.bool() ?? false
        try r.finish()
        return level
    }
}
