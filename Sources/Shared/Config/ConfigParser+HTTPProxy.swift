// `http` inbound settings.
//
//   v4: {accounts: [{user, pass}], allowTransparent, userLevel, timeout}
//   v5: {}   (proxy/http/simplified has no fields)

extension ConfigParser {
    static func readHTTPInbound(_ node: ConfigNode?, format: ConfigFormat) throws -> HTTPInboundSettings {
        var http = HTTPInboundSettings()
        guard let node else { return http }
        if format == .v5 {
            try node.object(protoNames: true).finish()
            return http
        }
        var r = try node.object()
        if let accounts = r.take("accounts") {
            http.accounts = try readAccounts(accounts)
        }
        // Transparent mode forwards requests that are not proxy requests; vmessd only serves proxy
        // requests (CONNECT and absolute URIs).
        try r.requireOff("allowTransparent")
        http.userLevel = try r.take("userLevel")?.int(levelRange) ?? 0
        // Deprecated in V2Ray and ignored there, as for socks.
        _ = try r.take("timeout")?.int(levelRange)
        try r.finish()
        return http
    }
}
