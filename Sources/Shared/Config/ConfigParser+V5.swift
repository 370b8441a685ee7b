// The parts of the v5 format (infra/conf/v5cfg in v2fly; objects are protobuf messages read with
// protojson) that differ from v4: `log` with LogSpecification objects and the simplified vmess inbound
// `settings.users: [uuid]`.

extension ConfigParser {
    /// v5 `log`: {error: {level, type, path}, access: {type, path}}. Enum names are matched
    /// case-insensitively ("Info", "info").
    /// - error.type: Console (stderr) | File (needs path) | None. If `type` is absent but the object is
    ///   present, Console is assumed: protojson would read the absent enum as None and silence the error
    ///   log, which is never what a config that sets `level` means (the upstream example does exactly that).
    /// - access.type: None (default) | Console (stdout) | File (needs path).
    static func readLogV5(_ node: ConfigNode) throws -> LogConfig {
        var r = try node.object(protoNames: true)
        var log = LogConfig()
        if let error = r.take("error") {
            var e = try error.object(protoNames: true)
            let level = try e.take("level").map(readLogLevel) ?? .warning
            let type = try e.take("type").map(readLogType) ?? .console
            let path = try e.take("path")?.string()
            try e.finish()
            switch type {
            case .none:
                log.level = .none
            case .console:
                log.level = level
            case .file:
                guard let path, !path.isEmpty else { throw error.error("missing required key \"path\" for type File") }
                log.level = level
                log.errorPath = path
            }
        }
        if let access = r.take("access") {
            var a = try access.object(protoNames: true)
            let type = try a.take("type").map(readLogType) ?? .none
            let path = try a.take("path")?.string()
            try a.finish()
            switch type {
            case .none:
                log.accessEnabled = false
            case .console:
                log.accessEnabled = true
            case .file:
                guard let path, !path.isEmpty else { throw access.error("missing required key \"path\" for type File") }
                log.accessEnabled = true
                log.accessPath = path
            }
        }
        try r.finish()
        return log
    }

    enum LogType { case none, console, file }

    /// v5 LogType; "Event" (log to the in-process event bus) has no meaning for vmessd.
    static func readLogType(_ node: ConfigNode) throws -> LogType {
        let text = try node.string()
        switch text.lowercased() {
        case "none": return .none
        case "console": return .console
        case "file": return .file
        case "event": throw node.error("log type \"Event\" is not supported by vmessd")
        default: throw node.mismatch("one of None, Console, File")
        }
    }

    /// v5 vmess inbound `settings` (SimplifiedConfig): {users: ["uuid", …]}; every user has alterId 0,
    /// level 0 and lets the client choose the security.
    static func readVMessInboundV5(_ node: ConfigNode) throws -> VMessInboundSettings {
        var r = try node.object(protoNames: true)
        let users = r.take("users")
        try r.finish()  // before the missing-key check: a v4 "clients" here is the more useful message
        guard let usersNode = users else { throw node.error("missing required key \"users\"") }
        var list: [VMessUser] = []
        var seen: [String: String] = [:]
        for entry in try usersNode.array() {
            guard case .string(let text) = entry.value else { throw entry.mismatch("a UUID string") }
            guard let id = canonicalUUID(text) else { throw entry.error("invalid UUID \(JSONC.quote(text))") }
            if let first = seen[id] {
                throw entry.error("duplicate user id \(JSONC.quote(id)) (also \(first))")
            }
            seen[id] = entry.path.description
            list.append(VMessUser(id: id))
        }
        guard !list.isEmpty else { throw usersNode.error("a vmess inbound needs at least one user") }
        return VMessInboundSettings(users: list)
    }
}
