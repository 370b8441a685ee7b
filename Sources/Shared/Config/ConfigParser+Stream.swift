// `streamSettings` of an inbound, in both formats, into one StreamSettings:
//
//   v4: {network: tcp|ws|httpupgrade|grpc|h2|kcp, security: none|tls, tcpSettings (ConfigParser+TCPHeader), wsSettings,
//        httpupgradeSettings, grpcSettings, httpSettings (ConfigParser+H2Transports), kcpSettings (ConfigParser+KCP),
//        tlsSettings, sockopt (ConfigParser+SocketOptions)}
//   v5: {transport: tcp|websocket|httpupgrade|grpc|http|kcp, transportSettings, security: none|tls, securitySettings,
//        socketSettings}
//
// `acceptProxyProtocol` may sit in tcpSettings, wsSettings, httpupgradeSettings (Xray), sockopt, or
// v5's tcp/websocket transportSettings and socketSettings; true in any of them turns it on (the
// peers OR them too: v2fly's tcp hub checks the transport's flag or the socket settings').
//
// Settings for a transport or security that is not selected are an error rather than ignored (V2Ray
// ignores them): `"wsSettings"` next to `network: "tcp"` usually means the operator forgot the network.
// The parser only parses; whether the worker serves a transport yet is not its concern.

extension ConfigParser {
    /// `forInbound`: a server needs a certificate under TLS; a client (outbound) does not.
    static func readStream(_ node: ConfigNode, format: ConfigFormat, forInbound: Bool = true) throws -> StreamSettings {
        let stream = try format == .v4 ? readStreamV4(node, forInbound: forInbound) : readStreamV5(node, forInbound: forInbound)
        // V2Ray's h2 client refuses to dial without TLS ("TLS must be enabled for http transport");
        // its server also serves h2c, for a TLS-terminating front.
        if !forInbound, stream.network == .h2, stream.security != .tls {
            throw node.error("the h2 transport needs \"security\": \"tls\" on an outbound (as in V2Ray)")
        }
        // A dialed connection has nobody in front of it to send a PROXY header.
        if !forInbound, stream.acceptProxyProtocol {
            throw node.error("\"acceptProxyProtocol\" applies to inbounds only")
        }
        // mKCP sessions are UDP datagrams: no balancer stream to carry a PROXY header in front.
        if stream.network == .kcp, stream.acceptProxyProtocol {
            throw node.error("\"acceptProxyProtocol\" does not apply to the kcp transport")
        }
        return stream
    }

    // MARK: v4

    /// v4 transport settings keys of transports vmessd does not implement.
    static let unsupportedStreamKeysV4: Set<String> = [
        "quicSettings", "dsSettings",
        "hy2Settings", "xtlsSettings", "realitySettings", "splithttpSettings", "xhttpSettings",
    ]

    static func readStreamV4(_ node: ConfigNode, forInbound: Bool = true) throws -> StreamSettings {
        var r = try node.object()
        var stream = StreamSettings()
        if let network = r.take("network") {
            stream.network = try readNetwork(network, names: ["tcp": .tcp, "raw": .tcp, "ws": .ws, "websocket": .ws,
                                                              "httpupgrade": .httpupgrade, "grpc": .grpc, "gun": .grpc,
                                                              "h2": .h2, "http": .h2, "kcp": .kcp, "mkcp": .kcp],
                                             expected: "one of tcp, ws, httpupgrade, grpc, h2, kcp")
        }
        if let security = r.take("security") {
            stream.security = try readSecurity(security)
        }
        let tcpSettings = r.take("tcpSettings")
        // Xray's newer name for the same object (its "raw" network is tcp).
        let rawSettings = r.take("rawSettings")
        if let tcpSettings, let rawSettings {
            throw rawSettings.error("\"rawSettings\" and \"tcpSettings\" are the same settings; give one of them")
        }
        let tcp = tcpSettings ?? rawSettings
        let ws = r.take("wsSettings")
        let upgrade = r.take("httpupgradeSettings")
        let grpcSettings = r.take("grpcSettings")
        let gunSettings = r.take("gunSettings")
        if grpcSettings != nil, let gunSettings {
            throw gunSettings.error("\"gunSettings\" and \"grpcSettings\" are the same settings; give one of them")
        }
        let grpc = grpcSettings ?? gunSettings
        let http = r.take("httpSettings")
        let kcp = r.take("kcpSettings")
        let tls = r.take("tlsSettings")
        if let sockopt = r.take("sockopt") {
            stream.sockopt = try readSocketOptionsV4(sockopt, acceptProxyProtocol: &stream.acceptProxyProtocol)
        }
        try r.finish(unsupported: unsupportedStreamKeysV4)

        if let tcp {
            try requireSelected(tcp, stream.network == .tcp, "network is \"tcp\"")
            stream.tcpHeader = try readTCPV4(tcp, acceptProxyProtocol: &stream.acceptProxyProtocol)
        }
        if let ws {
            try requireSelected(ws, stream.network == .ws, "network is \"ws\"")
        }
        if let upgrade {
            try requireSelected(upgrade, stream.network == .httpupgrade, "network is \"httpupgrade\"")
        }
        if let grpc {
            try requireSelected(grpc, stream.network == .grpc, "network is \"grpc\"")
        }
        if let http {
            try requireSelected(http, stream.network == .h2, "network is \"h2\"")
        }
        if let kcp {
            try requireSelected(kcp, stream.network == .kcp, "network is \"kcp\"")
        }
        switch stream.network {
        case .tcp: break
        case .grpc: stream.grpc = try grpc.map(readGRPCV4) ?? GRPCSettings()
        case .h2: stream.http = try http.map(readHTTPV4) ?? HTTPSettings()
        case .kcp: stream.kcp = try kcp.map(readKCPV4) ?? KCPSettings()
        case .ws: stream.ws = try ws.map { try readWebSocketV4($0, acceptProxyProtocol: &stream.acceptProxyProtocol) } ?? WebSocketSettings()
        case .httpupgrade:
            stream.httpUpgrade = try upgrade.map { try readHTTPUpgradeV4($0, acceptProxyProtocol: &stream.acceptProxyProtocol) } ?? HTTPUpgradeSettings()
        }
        if let tls {
            try requireSelected(tls, stream.security == .tls, "security is \"tls\"")
        }
        if stream.security == .tls {
            stream.tls = try tls.map(readTLSV4) ?? TLSSettings()
            if forInbound { try requireCertificate(stream, at: tls ?? node) }
        }
        return stream
    }

    /// v4 `wsSettings`: {path, headers{…}, host, maxEarlyData, earlyDataHeaderName, …}. A `Host` header
    /// goes to `host` (that is what the server checks); `host` and `headers.Host` must agree if both are given.
    static func readWebSocketV4(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> WebSocketSettings {
        var r = try node.object()
        var ws = WebSocketSettings()
        ws.path = try r.take("path").map(readPath) ?? "/"
        if let headers = r.take("headers") {
            (ws.host, ws.headers) = try readHeaderMap(headers)
        }
        if let host = r.take("host") {
            ws.host = try mergeHost(host, into: ws.host)
        }
        ws.maxEarlyData = try r.take("maxEarlyData")?.int(0...Int(Int32.max)) ?? 0
        ws.earlyDataHeaderName = try r.take("earlyDataHeaderName").map(readOptionalString) ?? nil
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        try r.requireOff("useBrowserForwarding")
        try r.requireOff("parseXForwardedFor")
        try r.finish()
        return ws
    }

    /// v4 `httpupgradeSettings` (Xray's v4 spelling): {path, host, headers{…}, maxEarlyData, earlyDataHeaderName}.
    static func readHTTPUpgradeV4(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> HTTPUpgradeSettings {
        var r = try node.object()
        var upgrade = HTTPUpgradeSettings()
        upgrade.path = try r.take("path").map(readPath) ?? "/"
        if let headers = r.take("headers") {
            (upgrade.host, upgrade.headers) = try readHeaderMap(headers)
        }
        if let host = r.take("host") {
            upgrade.host = try mergeHost(host, into: upgrade.host)
        }
        try readHTTPUpgradeEarlyData(&r, into: &upgrade)
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        try r.finish()
        return upgrade
    }

    // MARK: v5

    static func readStreamV5(_ node: ConfigNode, forInbound: Bool = true) throws -> StreamSettings {
        var r = try node.object(protoNames: true)
        var stream = StreamSettings()
        if let transport = r.take("transport") {
            // "ws" is the message's short name, "websocket" the name v5 configs use; both resolve in v2fly.
            stream.network = try readNetwork(transport, names: ["tcp": .tcp, "websocket": .ws, "ws": .ws,
                                                                "httpupgrade": .httpupgrade, "grpc": .grpc, "gun": .grpc,
                                                                "http": .h2, "h2": .h2, "kcp": .kcp, "mkcp": .kcp],
                                             expected: "one of tcp, websocket, httpupgrade, grpc, http, kcp")
        }
        let transportSettings = r.take("transportSettings")
        if let security = r.take("security") {
            stream.security = try readSecurity(security)
        }
        let securitySettings = r.take("securitySettings")
        if let socket = r.take("socketSettings") {
            stream.sockopt = try readSocketOptionsV5(socket, acceptProxyProtocol: &stream.acceptProxyProtocol)
        }
        try r.finish()

        switch stream.network {
        case .tcp:
            if let transportSettings {
                stream.tcpHeader = try readTCPV5(transportSettings, acceptProxyProtocol: &stream.acceptProxyProtocol)
            }
        case .ws:
            stream.ws = try transportSettings.map { try readWebSocketV5($0, acceptProxyProtocol: &stream.acceptProxyProtocol) } ?? WebSocketSettings()
        case .httpupgrade:
            stream.httpUpgrade = try transportSettings.map(readHTTPUpgradeV5) ?? HTTPUpgradeSettings()
        case .grpc:
            stream.grpc = try transportSettings.map(readGRPCV5) ?? GRPCSettings()
        case .h2:
            stream.http = try transportSettings.map(readHTTPV5) ?? HTTPSettings()
        case .kcp:
            stream.kcp = try transportSettings.map(readKCPV5) ?? KCPSettings()
        }
        if stream.security == .tls {
            stream.tls = try securitySettings.map(readTLSV5) ?? TLSSettings()
            if forInbound { try requireCertificate(stream, at: securitySettings ?? node) }
        } else if let securitySettings {
            try requireSelected(securitySettings, false, "security is \"tls\"")
        }
        return stream
    }

    /// v5 websocket `transportSettings`: {path, header: [{key, value}], maxEarlyData, earlyDataHeaderName, …}.
    /// The v5 message has no `host` field; a `Host` entry in `header` plays that role.
    static func readWebSocketV5(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> WebSocketSettings {
        var r = try node.object(protoNames: true)
        var ws = WebSocketSettings()
        ws.path = try r.take("path").map(readPath) ?? "/"
        if let header = r.take("header") {
            (ws.host, ws.headers) = try readHeaderList(header)
        }
        ws.maxEarlyData = try r.take("maxEarlyData")?.int(0...Int(Int32.max)) ?? 0
        ws.earlyDataHeaderName = try r.take("earlyDataHeaderName").map(readOptionalString) ?? nil
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        try r.requireOff("useBrowserForwarding")
        try r.requireOff("parseXForwardedFor")
        try r.finish()
        return ws
    }

    /// v5 httpupgrade `transportSettings`: {path, host, header: [{key, value}], maxEarlyData,
    /// earlyDataHeaderName}.
    static func readHTTPUpgradeV5(_ node: ConfigNode) throws -> HTTPUpgradeSettings {
        var r = try node.object(protoNames: true)
        var upgrade = HTTPUpgradeSettings()
        upgrade.path = try r.take("path").map(readPath) ?? "/"
        if let header = r.take("header") {
            (upgrade.host, upgrade.headers) = try readHeaderList(header)
        }
        if let host = r.take("host") {
            upgrade.host = try mergeHost(host, into: upgrade.host)
        }
        try readHTTPUpgradeEarlyData(&r, into: &upgrade)
        try r.requireOff("parseXForwardedFor")
        try r.finish()
        return upgrade
    }

    /// httpupgrade `maxEarlyData` + `earlyDataHeaderName` (v2fly's header early data, §12.2). The header
    /// carries base64, so a name that is not a valid header name is an error here rather than at dial time.
    static func readHTTPUpgradeEarlyData(_ r: inout ObjectReader, into upgrade: inout HTTPUpgradeSettings) throws {
        upgrade.maxEarlyData = try r.take("maxEarlyData")?.int(0...Int(Int32.max)) ?? 0
        if let name = r.take("earlyDataHeaderName"), let text = try readOptionalString(name) {
            guard isHeaderName(text) else { throw name.error("invalid HTTP header name \(JSONC.quote(text))") }
            upgrade.earlyDataHeaderName = text
        }
    }

    // MARK: shared pieces

    /// `acceptProxyProtocol` in a transport's settings: true turns it on for the inbound (false
    /// leaves what another key may have turned on).
    static func readAcceptProxyProtocol(_ r: inout ObjectReader, into flag: inout Bool) throws {
        if let node = r.take("acceptProxyProtocol"), try node.bool() { flag = true }
    }

    /// Transport names are case-insensitive in v2fly's v4 reader; v5 reuses the same table here.
    static let unsupportedNetworks: Set<String> = [
        "quic", "domainsocket", "ds", "hysteria2", "hy2",
        "splithttp", "xhttp", "meek", "mekya", "dtls",
    ]

    static func readNetwork(_ node: ConfigNode, names: [String: StreamSettings.Network],
                            expected: String) throws -> StreamSettings.Network {
        let name = try node.string()
        if let network = names[name.lowercased()] { return network }
        if unsupportedNetworks.contains(name.lowercased()) {
            throw node.error("transport \(JSONC.quote(name)) is not supported by vmessd yet")
        }
        throw node.mismatch(expected)
    }

    /// "none" (or "") and "tls", case-insensitive as in v2fly.
    static func readSecurity(_ node: ConfigNode) throws -> StreamSettings.Security {
        let name = try node.string()
        switch name.lowercased() {
        case "", "none": return .none
        case "tls": return .tls
        case "xtls", "reality", "utls": throw node.error("security \(JSONC.quote(name)) is not supported by vmessd yet")
        default: throw node.mismatch("none or tls")
        }
    }

    static func requireSelected(_ node: ConfigNode, _ selected: Bool, _ condition: String) throws {
        guard selected else {
            let key = node.path.description.split(separator: ".").last.map(String.init) ?? "settings"
            throw node.error("\(JSONC.quote(key)) has no effect unless \(condition)")
        }
    }

    /// A TLS server cannot handshake without a certificate.
    static func requireCertificate(_ stream: StreamSettings, at node: ConfigNode) throws {
        if stream.tls?.certificates.isEmpty ?? true {
            throw node.error("TLS on an inbound needs at least one certificate")
        }
    }

    /// v2fly normalises the path the same way: "" is "/", and a missing leading "/" is added.
    static func readPath(_ node: ConfigNode) throws -> String {
        let path = try node.string()
        if path.isEmpty { return "/" }
        return path.hasPrefix("/") ? path : "/" + path
    }

    /// "" means unset.
    static func readOptionalString(_ node: ConfigNode) throws -> String? {
        let text = try node.string()
        return text.isEmpty ? nil : text
    }

    /// v4 `headers: {"Host": "example.com", …}` → (Host, the other headers).
    static func readHeaderMap(_ node: ConfigNode) throws -> (host: String?, headers: [String: String]) {
        var r = try node.object()
        var host: String?
        var headers: [String: String] = [:]
        var names = Set<String>()
        for (key, member) in r.takeAll() {
            try addHeader(key, member.string(), at: member, host: &host, headers: &headers, names: &names)
        }
        return (host, headers)
    }

    /// v5 `header: [{key, value}, …]` → (Host, the other headers).
    static func readHeaderList(_ node: ConfigNode) throws -> (host: String?, headers: [String: String]) {
        var host: String?
        var headers: [String: String] = [:]
        var names = Set<String>()
        for item in try node.array() {
            var r = try item.object(protoNames: true)
            let key = try r.require("key").string()
            let value = try r.take("value")?.string() ?? ""
            try r.finish()
            try addHeader(key, value, at: item, host: &host, headers: &headers, names: &names)
        }
        return (host, headers)
    }

    /// Header names are case-insensitive (RFC 9110 §5.1), so "host" and "Host" are one header;
    /// `names` holds the lower-cased names seen so far.
    static func addHeader(_ name: String, _ value: String, at node: ConfigNode, host: inout String?,
                          headers: inout [String: String], names: inout Set<String>) throws {
        guard isHeaderName(name) else { throw node.error("invalid HTTP header name \(JSONC.quote(name))") }
        guard !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw node.error("HTTP header \(JSONC.quote(name)) has a line break or NUL in its value")
        }
        guard names.insert(name.lowercased()).inserted else {
            throw node.error("HTTP header \(JSONC.quote(name)) is given twice")
        }
        if name.lowercased() == "host" {
            host = value.isEmpty ? nil : value
        } else {
            headers[name] = value
        }
    }

    /// RFC 9110 token characters (header names, methods; the tcp HTTP disguise checks request lines with it).
    public static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { c in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(c))
        }
    }

    /// `host` next to a `Host` header: both may be given only if they agree.
    static func mergeHost(_ node: ConfigNode, into existing: String?) throws -> String? {
        let host = try readOptionalString(node)
        if let existing, let host, existing != host {
            throw node.error("host \(JSONC.quote(host)) contradicts the Host header \(JSONC.quote(existing))")
        }
        return host ?? existing
    }
}
