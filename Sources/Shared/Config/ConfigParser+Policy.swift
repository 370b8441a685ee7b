// `policy`: per-level timeouts and buffer size ({levels: {"0": {...}}}); `system` only holds statistics
// switches. The statistics they turn on are served by the V2Ray API (`stats`, `api`), which vmessd does
// not have yet: a switch turned on is an error that says so (off is what vmessd does anyway).

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
            for key in ["statsInboundUplink", "statsInboundDownlink", "statsOutboundUplink", "statsOutboundDownlink"] {
                try requireStatsOff(s.take(key))
            }
            // Xray: the access log shows the destination after sniffing; vmessd logs the requested one.
            if let flag = s.take("overrideAccessLogDest"), try flag.bool() {
                throw flag.error("\"overrideAccessLogDest\": true is not supported by vmessd yet")
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
        try requireStatsOff(r.take("statsUserUplink"))  // see the file comment
        try requireStatsOff(r.take("statsUserDownlink"))
        try requireStatsOff(r.take("statsUserOnline"))
        try r.finish()
        return level
    }

    /// A statistics switch: false (or absent) is accepted; true needs the stats API.
    static func requireStatsOff(_ node: ConfigNode?) throws {
        guard let node, try node.bool() else { return }
        throw node.error("statistics are not supported by vmessd yet (they come with the \"stats\" and \"api\" sections); set it to false")
    }
}
