// `"vmessd": {"userLimits": {levels: {"N": limits}, users: {"email": limits}}}` (UserLimitPolicy).

extension ConfigParser {
    static func readUserLimitPolicy(_ node: ConfigNode) throws -> UserLimitPolicy {
        var r = try node.object()
        var policy = UserLimitPolicy()
        if let levels = r.take("levels") {
            var l = try levels.object()
            for (key, member) in l.takeAll() {
                let level = try readLevelKey(key, member)
                guard policy.levels[level] == nil else { throw member.error("level \(level) appears twice") }
                policy.levels[level] = try readUserLimits(member)
            }
            try l.finish()
        }
        if let users = r.take("users") {
            var u = try users.object()
            for (email, member) in u.takeAll() {
                guard !email.isEmpty else { throw member.error("a user is named by its email, got \"\"") }
                guard policy.users[email] == nil else { throw member.error("user \(JSONC.quote(email)) appears twice") }
                policy.users[email] = try readUserLimits(member)
            }
            try u.finish()
        }
        try r.finish()
        return policy
    }

    /// Every field optional; 0 lifts a limit.
    static func readUserLimits(_ node: ConfigNode) throws -> UserLimits {
        var r = try node.object()
        var limits = UserLimits()
        limits.connections = try r.take("connections")?.int(0...(1 << 24))
        limits.sourceIPs = try r.take("sourceIPs")?.int(0...UserLimits.maximumSourceIPs)
        limits.uplinkRate = try r.take("uplinkRate")?.int(0...UserLimits.maximumRate)
        limits.downlinkRate = try r.take("downlinkRate")?.int(0...UserLimits.maximumRate)
        if let burst = r.take("burst") {
            let value = try burst.int(0...UserLimits.maximumRate)
            guard value == 0 || value >= 2048 else { throw burst.mismatch("0 or at least 2048 bytes") }
            limits.burst = value
        }
        try r.finish()
        return limits
    }
}
