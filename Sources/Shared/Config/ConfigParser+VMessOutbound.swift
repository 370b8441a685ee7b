// The vmess outbound (the client side) and the outbound `mux` object.
//
//   v4: settings {vnext: [{address, port, users: [{id, alterId, security, level, email}]}]}
//   Xray's flat form: settings {address, port, id, security, level, email}  (one server, one user)
//   v5: settings {address, port, uuid}          (proxy/vmess/outbound SimplifiedConfig)
//   both: mux {enabled, concurrency}

extension ConfigParser {
    static func readVMessOutbound(_ node: ConfigNode, format: ConfigFormat) throws -> VMessOutboundSettings {
        if format == .v5 || hasV5OnlyKey(node, ["uuid"]) {
            return try readVMessOutboundV5(node)
        }
        if hasV5OnlyKey(node, ["address"]) && !hasV5OnlyKey(node, ["vnext"]) {
            return try readVMessOutboundFlat(node)
        }
        var r = try node.object()
        let vnext = try r.require("vnext")
        try r.finish()
        var servers: [VMessOutboundSettings.Server] = []
        for item in try vnext.array() {
            var s = try item.object()
            let address = try readHostAddress(s.require("address"))
            let port = try s.require("port").int(1...65535)
            let usersNode = try s.require("users")
            let users = try usersNode.array().map(readClientV4)
            try s.finish()
            guard !users.isEmpty else { throw usersNode.error("a vmess server needs at least one user") }
            servers.append(.init(address: address, port: port, users: users))
        }
        guard !servers.isEmpty else { throw vnext.error("a vmess outbound needs at least one server") }
        return VMessOutboundSettings(servers: servers)
    }

    /// Format detection (`detectFormat`) looks at vmess inbounds, streamSettings and log; a client
    /// config whose only v5 trait sits in client-side settings is therefore read as v4. Those settings
    /// are recognised by a key that only their v5 form has.
    static func hasV5OnlyKey(_ node: ConfigNode, _ keys: Set<String>) -> Bool {
        guard case .object(let object) = node.value else { return false }
        return object.members.contains { keys.contains(ObjectReader.lowerCamel($0.key)) }
    }

    /// Xray's flat form: the one server's address and port and the one user's keys side by side.
    static func readVMessOutboundFlat(_ node: ConfigNode) throws -> VMessOutboundSettings {
        var r = try node.object()
        let address = try readHostAddress(r.require("address"))
        let port = try r.require("port").int(1...65535)
        if let experiments = r.take("experiments") {
            throw experiments.error("Xray's \"experiments\" is not supported by vmessd")
        }
        let user = try readClientFields(&r)
        try r.finish()
        return VMessOutboundSettings(servers: [.init(address: address, port: port, users: [user])])
    }

    /// v5 SimplifiedConfig: one server, one user with alterId 0 and security "auto".
    static func readVMessOutboundV5(_ node: ConfigNode) throws -> VMessOutboundSettings {
        var r = try node.object(protoNames: true)
        let address = try readHostAddress(r.require("address"))
        let port = try r.require("port").int(1...65535)
        let idNode = try r.require("uuid")
        let text = try idNode.string()
        try r.finish()
        guard let id = canonicalUUID(text) else { throw idNode.error("invalid UUID \(JSONC.quote(text))") }
        return VMessOutboundSettings(servers: [.init(address: address, port: port,
                                                     users: [VMessUser(id: id, security: "auto")])])
    }

    /// `mux: {enabled, concurrency}`. V2Ray: concurrency 1-1024, 0 means the default 8, a negative
    /// value turns mux off even when enabled. Only the vmess outbound multiplexes.
    static func readMux(_ node: ConfigNode, protocolName: String) throws -> MuxSettings? {
        var m = try node.object()
        let enabledNode = m.take("enabled")
        let enabled = try enabledNode?.bool() ?? false
        let concurrency = try m.take("concurrency")?.int(-1...1024) ?? 0
        try m.finish()
        guard enabled, concurrency >= 0 else { return nil }
        guard protocolName == "vmess" else {
            throw (enabledNode ?? node).error("\"mux\" is not supported by vmessd yet (set \"enabled\" to false)")
        }
        return MuxSettings(concurrency: concurrency == 0 ? 8 : concurrency)
    }
}
