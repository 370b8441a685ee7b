// The parts of the v4 format (infra/conf/v4 in v2fly) that differ from v5: `log` with path strings and
// the vmess inbound `settings.clients[]` objects.

extension ConfigParser {
    /// v4 `log`: {loglevel, access, error}.
    /// - loglevel: debug|info|warning|error|none, case-insensitive; default warning. (V2Ray falls back to
    ///   warning for anything else; vmessd rejects the typo instead.)
    /// - access: absent or "none" = off, "" = stdout, else a file path. V2Ray turns the console access
    ///   log on whenever a `log` object exists; vmessd keeps it off unless asked, since an access line per
    ///   connection is a cost a busy server should opt into.
    /// - error: absent or "" = stderr, "none" = no error log (level none), else a file path.
    static func readLogV4(_ node: ConfigNode) throws -> LogConfig {
        var r = try node.object()
        var log = LogConfig()
        if let levelNode = r.take("loglevel") {
            log.level = try readLogLevel(levelNode)
        }
        if let access = r.take("access") {
            switch try access.string() {
            case "none": log.accessEnabled = false
            case "": log.accessEnabled = true
            case let path: log.accessEnabled = true; log.accessPath = path
            }
        }
        if let error = r.take("error") {
            switch try error.string() {
            case "none": log.level = .none
            case "": break
            case let path: log.errorPath = path
            }
        }
        try r.finish(unsupported: ["dnsLog", "maskAddress"])
        return log
    }

    /// Shared by both formats: v4 writes "warning", v5 "Warning"; v5's "Unknown" is its default (warning).
    static func readLogLevel(_ node: ConfigNode) throws -> LogLevel {
        let text = try node.string()
        switch text.lowercased() {
        case "debug": return .debug
        case "info": return .info
        case "warning", "unknown": return .warning
        case "error": return .error
        case "none": return .none
        default: throw node.mismatch("one of debug, info, warning, error, none")
        }
    }

    /// v4 vmess inbound `settings`: {clients[], default{level, alterId}, disableInsecureEncryption}; `detour`
    /// is an error until dynamic port is implemented.
    static func readVMessInboundV4(_ node: ConfigNode) throws -> VMessInboundSettings {
        var r = try node.object()
        // A detour target may have no clients of its own (ConfigParser+Detour checks the others).
        let clientsNode = r.take("clients")
        var users: [VMessUser] = []
        var seen: [String: String] = [:]  // canonical id → path of its first use
        for client in try clientsNode?.array() ?? [] {
            let user = try readClientV4(client)
            if let first = seen[user.id] {
                throw client.path.appending(key: "id").node(.string(user.id), client.file)
                    .error("duplicate client id \(JSONC.quote(user.id)) (also \(first))")
            }
            seen[user.id] = client.path.description
            users.append(user)
        }

        var settings = VMessInboundSettings(users: users)
        if let defaults = r.take("default") {
            var d = try defaults.object()
            settings.defaultLevel = try d.take("level")?.int(levelRange) ?? 0
            settings.defaultAlterId = try d.take("alterId")?.int(alterIdRange) ?? 0
            try d.finish()
        }
        if let detour = r.take("detour") {
            var d = try detour.object()
            let to = try d.require("to")
            settings.detourTo = try to.string()
            guard settings.detourTo?.isEmpty == false else { throw to.error("a detour needs the tag of an inbound") }
            try d.finish()
        }
        settings.disableInsecureEncryption = try r.take("disableInsecureEncryption")?.bool() ?? false
        try r.finish()
        return settings
    }

    /// V2Ray stores levels and alter ids as uint32 / uint16.
    static let levelRange = 0...Int(UInt32.max)
    static let alterIdRange = 0...65535

    /// The body securities a v4 client entry may name (v2fly `SecurityConfig`; "auto" lets the client pick).
    static let vmessSecurities: Set<String> = ["aes-128-gcm", "chacha20-poly1305", "auto", "none", "zero"]

    static func readClientV4(_ node: ConfigNode) throws -> VMessUser {
        var r = try node.object()
        let user = try readClientFields(&r)
        try r.finish()
        return user
    }

    /// The user keys of a v4 client entry (also the flat form of Xray's vmess outbound settings).
    static func readClientFields(_ r: inout ObjectReader) throws -> VMessUser {
        let idNode = try r.require("id")
        let idText = try idNode.string()
        guard let id = canonicalUUID(idText) else { throw idNode.error("invalid UUID \(JSONC.quote(idText))") }
        var user = VMessUser(id: id)
        user.alterId = try r.take("alterId")?.int(alterIdRange) ?? 0
        if let security = r.take("security") {
            let name = try security.string().lowercased()
            guard vmessSecurities.contains(name) else {
                throw security.mismatch("one of aes-128-gcm, chacha20-poly1305, auto, none, zero")
            }
            user.security = name
        }
        user.level = try r.take("level")?.int(levelRange) ?? 0
        user.email = try r.take("email")?.string()
        return user
    }
}
