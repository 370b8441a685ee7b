// `socks` inbound settings.
//
//   v4: {auth: "noauth"|"password", accounts: [{user, pass}], udp, ip, userLevel, timeout, packetEncoding}
//   v5: {address, udpEnabled, packetEncoding}   (proxy/socks/simplified: no authentication in the simplified form)

extension ConfigParser {
    static func readSocksInbound(_ node: ConfigNode?, format: ConfigFormat) throws -> SocksInboundSettings {
        var socks = SocksInboundSettings()
        guard let node else { return socks }
        if format == .v5 || hasV5OnlyKey(node, ["udpEnabled", "address"]) {
            var r = try node.object(protoNames: true)
            socks.udpAddress = try r.take("address").map(readUDPAddress)
            socks.udp = try r.take("udpEnabled")?.bool() ?? false
            if let encoding = r.take("packetEncoding") {
                // None: plain SOCKS5 UDP (what vmessd does). Packet: V2Ray's packetaddr encoding
                // of each datagram's address into the stream, which vmessd does not speak.
                if try readV5Enum(encoding, ["None", "Packet"], [false, true]) {
                    throw encoding.error("packetEncoding \"Packet\" is not supported by vmessd yet (use \"None\")")
                }
            }
            try r.finish()
            return socks
        }
        var r = try node.object()
        var authNode: ConfigNode?
        if let auth = r.take("auth") {
            authNode = auth
            switch try auth.string().lowercased() {
            case "noauth": socks.auth = .noAuth
            case "password": socks.auth = .password
            // V2Ray falls back to noauth for anything else; a typo must not open the proxy to everyone.
            default: throw auth.mismatch("one of noauth, password")
            }
        }
        if let accounts = r.take("accounts") {
            socks.accounts = try readAccounts(accounts)
            if socks.auth == .noAuth, !socks.accounts.isEmpty {
                throw accounts.error("accounts have no effect unless \"auth\" is \"password\"")
            }
        }
        if socks.auth == .password, socks.accounts.isEmpty {
            throw (authNode ?? node).error("auth \"password\" needs at least one entry in \"accounts\"")
        }
        socks.udp = try r.take("udp")?.bool() ?? false
        socks.udpAddress = try r.take("ip").map(readUDPAddress)
        socks.userLevel = try r.take("userLevel")?.int(levelRange) ?? 0
        // `timeout` is deprecated in V2Ray (policy handshake/connIdle replaced it) and ignored there.
        _ = try r.take("timeout")?.int(levelRange)
        if let encoding = r.take("packetEncoding") {
            let value = try encoding.string()
            guard value.isEmpty || value == "None" else {
                throw encoding.error("packetEncoding \(JSONC.quote(value)) is not supported by vmessd yet")
            }
        }
        try r.finish()
        return socks
    }

    /// `accounts: [{user, pass}]`, shared by the socks and http inbounds. A repeated user would make
    /// V2Ray keep only the last password; that is refused here.
    static func readAccounts(_ node: ConfigNode) throws -> [ProxyAccount] {
        var accounts: [ProxyAccount] = []
        var seen = Set<String>()
        for item in try node.array() {
            var r = try item.object()
            let userNode = try r.require("user")
            let user = try userNode.string()
            let pass = try r.require("pass").string()
            try r.finish()
            // RFC 1929 carries each in one length byte.
            guard !user.isEmpty, user.utf8.count <= 255 else { throw userNode.mismatch("a user name of 1-255 bytes") }
            guard pass.utf8.count <= 255 else { throw item.error("the password is longer than 255 bytes") }
            guard seen.insert(user).inserted else { throw userNode.error("duplicate user \(JSONC.quote(user))") }
            accounts.append(ProxyAccount(user: user, pass: pass))
        }
        return accounts
    }

    /// The address a socks inbound announces for UDP: an IP literal (V2Ray also takes a domain, which
    /// no SOCKS client can send datagrams to without resolving it first; refused).
    static func readUDPAddress(_ node: ConfigNode) throws -> String {
        let text = try node.string()
        guard let ip = canonicalIPAddress(text) else { throw node.mismatch("an IP address literal") }
        return ip
    }
}
