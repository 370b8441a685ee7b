// `dokodemo-door` inbound settings.
//
//   v4: {address, port, network: "tcp"|"udp"|"tcp,udp", followRedirect, userLevel, timeout}
//   v5: {address, port, networks: "tcp,udp" or ["tcp", "udp"], followRedirect, userLevel}

extension ConfigParser {
    static func readDokodemo(_ node: ConfigNode, format: ConfigFormat) throws -> DokodemoSettings {
        let v5 = format == .v5 || hasV5OnlyKey(node, ["networks"])
        var r = try node.object(protoNames: v5)
        // Transparent proxying (TPROXY/REDIRECT original destination) is not implemented, so the
        // fixed target is required.
        try r.requireOff("followRedirect")
        let address = try readHostAddress(r.require("address"))
        // Required, except on the inbound of the gRPC API (V2Ray's API inbound has none): absent is 0
        // here, and checkDokodemoPorts refuses it on every dokodemo-door the workers serve.
        let port = try r.take("port")?.int(1...65535) ?? 0
        var settings = DokodemoSettings(address: address, port: port)
        if let network = r.take(v5 ? "networks" : "network") {
            (settings.tcp, settings.udp) = try readNetworkList(network)
        }
        settings.userLevel = try r.take("userLevel")?.int(levelRange) ?? 0
        if !v5 {
            _ = try r.take("timeout")?.int(levelRange)  // deprecated and ignored, as in V2Ray
        }
        try r.finish()
        return settings
    }

    /// After the API's inbounds left the list: every dokodemo-door needs its target port.
    static func checkDokodemoPorts(_ config: Config, file: String) throws {
        for inbound in config.inbounds {
            if case .dokodemo(let settings) = inbound.settings, settings.port == 0 {
                throw ConfigError(file: file, path: inbound.jsonPath + ".settings", reason: "missing required key \"port\"")
            }
        }
    }

    /// "tcp", "udp", "tcp,udp" (any order and case), or an array of those names.
    static func readNetworkList(_ node: ConfigNode) throws -> (tcp: Bool, udp: Bool) {
        let names: [String]
        if case .array = node.value {
            names = try node.strings()
        } else {
            names = try node.string().split(separator: ",").map { $0.trimmingSpaces() }
        }
        var tcp = false, udp = false
        for name in names {
            switch name.lowercased() {
            case "tcp": tcp = true
            case "udp": udp = true
            default: throw node.mismatch("\"tcp\", \"udp\" or \"tcp,udp\"")
            }
        }
        guard tcp || udp else { throw node.mismatch("\"tcp\", \"udp\" or \"tcp,udp\"") }
        return (tcp, udp)
    }

    /// A target host: an IP literal (stored canonical) or a domain name of letters, digits, '-', '.',
    /// '_' (what the VMess address field can carry, §6.4), 1-255 bytes.
    static func readHostAddress(_ node: ConfigNode) throws -> String {
        let text = try node.string()
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if let ip = canonicalIPAddress(bare) { return ip }
        let allowed = text.utf8.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
        }
        guard !text.isEmpty, text.utf8.count <= 255, allowed else {
            throw node.mismatch("an IP address or a domain name")
        }
        return text
    }
}

private extension Substring {
    func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
