// `policy`: per-level timeouts and buffer size ({levels: {"0": {...}}}); `system` only holds statistics
// switches. vmessd has no statistics API, so every stats* switch is accepted (type-checked) and has no
// effect: they change what is counted, never how traffic is handled.

extension ConfigParser {
    static func readPolicy(_ node: ConfigNode) throws -> PolicyConfig {
        var r = try node.object()
        var policy = PolicyConfig()
        if let levels = r.take("levels") {
            var l = try levels.object()
            for (key, member) in l.takeAll() {
                guard !key.isEmpty, key.allSatisfy({ $0.isASCII && $0.isNumber }), let level = Int(key),
                      levelRange.contains(level) else {
                    throw member.error("a policy level key must be a decimal number 0-\(UInt32.max), got \(JSONC.quote(key))")
                }
                guard policy.levels[level] == nil else {
                    throw member.error("level \(level) appears twice")
                }
                policy.levels[level] = try readLevelPolicy(member)
            }
            try l.finish()
        }
        if let system = r.take("system") {
            var s = try system.object()
            for key in ["statsInboundUplink", "statsInboundDownlink", "statsOutboundUplink", "statsOutboundDownlink",
                        "overrideAccessLogDest"] {
                _ = try s.take(key)?.bool()
            }
            try s.finish()
        }
        try r.finish()
        return policy
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
        _ = try r.take("statsUserUplink")?.bool()  // statistics only, see the file comment
        _ = try r.take("statsUserDownlink")?.bool()
        try r.finish()
        return level
    }
}
