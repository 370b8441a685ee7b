// The two transports on HTTP/2, in both formats:
//
//   gRPC  v4: network "grpc" (or "gun"), grpcSettings (or gunSettings) {serviceName, multiMode,
//             initial_windows_size, Xray's idle_timeout, health_check_timeout, permit_without_stream,
//             user_agent}
//         v5: transport "grpc" (or "gun"), transportSettings {serviceName}
//   h2    v4: network "h2" (or "http"), httpSettings {host[], path, method, headers{name: value | [values]},
//             read_idle_timeout, health_check_timeout}
//         v5: transport "http" (or "h2"), transportSettings {host[], path, method, header[{name, value[]}]}
//
// The keep-alive keys configure the client's HTTP/2 PINGs (H2KeepAliveSettings); as in the
// reference they do nothing on an inbound.

extension ConfigParser {

    /// v4 `grpcSettings`.
    static func readGRPCV4(_ node: ConfigNode) throws -> GRPCSettings {
        var r = try node.object()
        var grpc = GRPCSettings()
        grpc.serviceName = try r.take("serviceName").map(readServiceName) ?? ""
        grpc.multiMode = try r.take("multiMode")?.bool() ?? false
        grpc.initialWindowSize = try readWindowSize(&r)
        // grpc-go: a keep-alive time under 10 s is raised to 10 s, a zero time means no PINGs, a
        // zero timeout means 20 s.
        let idle = try (r.take("idle_timeout") ?? r.take("idleTimeout"))?.int(0...Int(Int32.max)) ?? 0
        let timeout = try (r.take("health_check_timeout") ?? r.take("healthCheckTimeout"))?.int(0...Int(Int32.max)) ?? 0
        let withoutStream = try (r.take("permit_without_stream") ?? r.take("permitWithoutStream"))?.bool() ?? false
        if idle > 0 {
            grpc.keepAlive = H2KeepAliveSettings(idle: max(idle, 10), timeout: timeout > 0 ? timeout : 20, withoutStream: withoutStream)
        }
        if let agent = r.take("user_agent") ?? r.take("userAgent") {
            let text = try agent.string()
            guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw agent.error("user_agent must not contain control characters")
            }
            grpc.userAgent = text.isEmpty ? nil : text
        }
        try r.finish()
        return grpc
    }

    /// v5 grpc `transportSettings`: v2fly's message has only `service_name`.
    static func readGRPCV5(_ node: ConfigNode) throws -> GRPCSettings {
        var r = try node.object(protoNames: true)
        var grpc = GRPCSettings()
        grpc.serviceName = try r.take("serviceName").map(readServiceName) ?? ""
        try r.finish()
        return grpc
    }

    /// A service name becomes one path segment. Xray's "/custom/path|..." form (a name starting with
    /// "/") is a different addressing scheme vmessd does not implement.
    static func readServiceName(_ node: ConfigNode) throws -> String {
        let name = try node.string()
        if name.hasPrefix("/") {
            throw node.error("a serviceName starting with \"/\" (Xray's custom path form) is not supported by vmessd yet")
        }
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "/" && $0 != "?" && $0 != "#" && $0 != "%" })
        else { throw node.error("serviceName \(JSONC.quote(name)) must be printable ASCII without spaces, '/', '?', '#' or '%'") }
        return name
    }

    /// `initial_windows_size` (Xray; bytes, 0 = default): HTTP/2 allows 65535 ... 2^31-1.
    static func readWindowSize(_ r: inout ObjectReader) throws -> Int? {
        let node = r.take("initial_windows_size") ?? r.take("initialWindowsSize")
        guard let node else { return nil }
        let n = try node.int(0...Int(Int32.max))
        if n == 0 { return nil }
        guard n >= 65535 else { throw node.error("initial_windows_size must be 0 (default) or at least 65535 (HTTP/2's minimum window)") }
        return n
    }

    /// v4 `httpSettings`.
    static func readHTTPV4(_ node: ConfigNode) throws -> HTTPSettings {
        var r = try node.object()
        var http = HTTPSettings()
        if let host = r.take("host") { http.hosts = try readHostList(host) }
        http.path = try r.take("path").map(readPath) ?? "/"
        if let method = r.take("method") { http.method = try readMethod(method) }
        if let headers = r.take("headers") {
            var h = try headers.object()
            for (name, value) in h.takeAll() {
                let values: [String]
                if case .array = value.value { values = try value.strings() } else { values = [try value.string()] }
                try addH2Header(name, values, at: value, into: &http)
            }
            try h.finish()
        }
        // Go's http2.Transport: no PINGs without a read idle timeout; the ping timeout defaults to 15 s.
        let idle = try (r.take("read_idle_timeout") ?? r.take("readIdleTimeout"))?.int(0...Int(Int32.max)) ?? 0
        let timeout = try (r.take("health_check_timeout") ?? r.take("healthCheckTimeout"))?.int(0...Int(Int32.max)) ?? 0
        if idle > 0 { http.keepAlive = H2KeepAliveSettings(idle: idle, timeout: timeout > 0 ? timeout : 15, withoutStream: true) }
        try r.finish()
        return http
    }

    /// v5 http `transportSettings`.
    static func readHTTPV5(_ node: ConfigNode) throws -> HTTPSettings {
        var r = try node.object(protoNames: true)
        var http = HTTPSettings()
        if let host = r.take("host") { http.hosts = try readHostList(host) }
        http.path = try r.take("path").map(readPath) ?? "/"
        if let method = r.take("method") { http.method = try readMethod(method) }
        if let header = r.take("header") {
            for item in try header.array() {
                var h = try item.object(protoNames: true)
                let name = try h.require("name").string()
                let values = try h.take("value")?.strings() ?? []
                try h.finish()
                try addH2Header(name, values, at: item, into: &http)
            }
        }
        try r.finish()
        return http
    }

    /// `host`: a string or an array of strings (v2fly's StringList).
    static func readHostList(_ node: ConfigNode) throws -> [String] {
        let hosts: [String]
        if case .array = node.value { hosts = try node.strings() } else { hosts = [try node.string()] }
        for host in hosts where host.isEmpty || host.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
            throw node.error("host \(JSONC.quote(host)) is not a valid authority")
        }
        return hosts
    }

    static func readMethod(_ node: ConfigNode) throws -> String {
        let method = try node.string()
        if method.isEmpty { return "PUT" }
        guard isHeaderName(method) else { throw node.error("invalid HTTP method \(JSONC.quote(method))") }
        return method
    }

    /// HTTP/2 header names are lower-case on the wire; pseudo-headers and connection-specific ones are
    /// not the config's to set (RFC 9113 §8.2.2).
    static func addH2Header(_ name: String, _ values: [String], at node: ConfigNode, into http: inout HTTPSettings) throws {
        guard isHeaderName(name) else { throw node.error("invalid HTTP header name \(JSONC.quote(name))") }
        let lower = name.lowercased()
        if ["host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "content-length"].contains(lower) {
            throw node.error("HTTP header \(JSONC.quote(name)) cannot be set on an HTTP/2 request")
        }
        for value in values {
            guard !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                throw node.error("HTTP header \(JSONC.quote(name)) has a line break or NUL in its value")
            }
            http.headers.append(.init(name: lower, value: value))
        }
    }
}
