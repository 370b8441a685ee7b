// The tcp transport's HTTP disguise, in both formats, into TCPHTTPHeaderSettings:
//
//   v4 tcpSettings.header: {type: "none"|"http",
//        request:  {version: "1.1", method: "GET", path: ["/"] | "/a,/b", headers: {Name: [values] | "a,b"}},
//        response: {version: "1.1", status: "200", reason: "OK", headers: {Name: [values] | "a,b"}}}
//   v5 tcp transportSettings.headerSettings: {"@type": "v2ray.core.transport.internet.headers.http.Config",
//        request:  {version: {value}, method: {value}, uri: [..], header: [{name, value: [..]}]},
//        response: {version: {value}, status: {code, reason}, header: [{name, value: [..]}]}}
//
// v4 follows V2Ray's loader (infra/conf transport_authenticators.go): an empty or absent field keeps
// its default, and `headers` replaces the whole default header set (browser-like values), sorted by
// name; a single string is split at commas as V2Ray's StringList does. v5 is the protobuf message:
// no default headers. Values that would break the head on the wire (line breaks, spaces in a path, a
// status that is not three digits) are errors here, where V2Ray would send them as written.

extension ConfigParser {
    /// v4 `tcpSettings`: {header, acceptProxyProtocol}. nil: plain tcp.
    static func readTCPV4(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> TCPHTTPHeaderSettings? {
        var r = try node.object()
        let header = try r.take("header").map(readTCPHeaderV4) ?? nil
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        try r.finish()
        return header
    }

    /// v4 `tcpSettings.header`. V2Ray lower-cases the type; a header without one is plain tcp here.
    static func readTCPHeaderV4(_ node: ConfigNode) throws -> TCPHTTPHeaderSettings? {
        var h = try node.object()
        let typeNode = h.take("type")
        let type = try typeNode?.string().lowercased() ?? "none"
        let request = h.take("request")
        let response = h.take("response")
        switch type {
        case "none":
            for part in [request, response].compactMap({ $0 }) {
                try requireSelected(part, false, "type is \"http\"")
            }
            try h.finish()
            return nil
        case "http":
            try h.finish()
            var settings = TCPHTTPHeaderSettings()
            settings.request.headers = defaultRequestHeadersV4
            settings.response.headers = defaultResponseHeadersV4
            if let request { try readHTTPRequestV4(request, into: &settings.request) }
            if let response { try readHTTPResponseV4(response, into: &settings.response) }
            return settings
        default:
            throw typeNode!.mismatch("\"none\" or \"http\"")
        }
    }

    /// V2Ray's v4 defaults (AuthenticatorRequest.Build), used unless `headers` is given and non-empty.
    static let defaultRequestHeadersV4: [TCPHTTPHeaderSettings.Header] = [
        .init(name: "Host", values: ["www.baidu.com", "www.bing.com"]),
        .init(name: "User-Agent", values: [
            "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.143 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 10_0_2 like Mac OS X) AppleWebKit/601.1 (KHTML, like Gecko) CriOS/53.0.2785.109 Mobile/14A456 Safari/601.1.46",
        ]),
        .init(name: "Accept-Encoding", values: ["gzip, deflate"]),
        .init(name: "Connection", values: ["keep-alive"]),
        .init(name: "Pragma", values: ["no-cache"]),
    ]

    /// V2Ray's v4 defaults (AuthenticatorResponse.Build).
    static let defaultResponseHeadersV4: [TCPHTTPHeaderSettings.Header] = [
        .init(name: "Content-Type", values: ["application/octet-stream", "video/mpeg"]),
        .init(name: "Transfer-Encoding", values: ["chunked"]),
        .init(name: "Connection", values: ["keep-alive"]),
        .init(name: "Pragma", values: ["no-cache"]),
        .init(name: "Cache-Control", values: ["private", "no-cache"]),
    ]

    static func readHTTPRequestV4(_ node: ConfigNode, into request: inout TCPHTTPHeaderSettings.Request) throws {
        var r = try node.object()
        if let version = r.take("version"), let text = try nonEmptyString(version) {
            request.version = try checkHTTPVersion(text, version)
        }
        if let method = r.take("method"), let text = try nonEmptyString(method) {
            request.method = try checkHTTPMethod(text, method)
        }
        if let path = r.take("path") {
            let paths = try stringList(path).map { try checkRequestPath($0.string(), $0) }
            if !paths.isEmpty { request.paths = paths }
        }
        if let headers = r.take("headers") {
            let list = try readDisguiseHeadersV4(headers)
            if !list.isEmpty { request.headers = list }
        }
        try r.finish()
    }

    static func readHTTPResponseV4(_ node: ConfigNode, into response: inout TCPHTTPHeaderSettings.Response) throws {
        var r = try node.object()
        if let version = r.take("version"), let text = try nonEmptyString(version) {
            response.version = try checkHTTPVersion(text, version)
        }
        if let status = r.take("status"), let text = try nonEmptyString(status) {
            response.status = try checkHTTPStatus(text, status)
        }
        if let reason = r.take("reason"), let text = try nonEmptyString(reason) {
            response.reason = try checkHTTPReason(text, reason)
        }
        if let headers = r.take("headers") {
            let list = try readDisguiseHeadersV4(headers)
            if !list.isEmpty { response.headers = list }
        }
        try r.finish()
    }

    /// `{Name: [values] | "a,b"}`, sorted by name (V2Ray sorts the map's keys). A null value is an
    /// error, as in V2Ray ("empty HTTP header value").
    static func readDisguiseHeadersV4(_ node: ConfigNode) throws -> [TCPHTTPHeaderSettings.Header] {
        guard case .object(let object) = node.value else { throw node.mismatch("an object") }
        if let null = object.members.first(where: { $0.value == .null }) {
            throw node.path.appending(key: null.key).node(null.value, node.file)
                .error("HTTP header \(JSONC.quote(null.key)) has no value")
        }
        var r = try node.object()
        var headers: [TCPHTTPHeaderSettings.Header] = []
        var names = Set<String>()
        for (name, member) in r.takeAll() {
            let values = try stringList(member).map { try checkHeaderValue($0.string(), name, $0) }
            headers.append(try disguiseHeader(name, values, at: member, names: &names))
        }
        return headers.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    // MARK: v5

    static let httpHeaderTypeV5 = "v2ray.core.transport.internet.headers.http.Config"
    static let noopHeaderTypeV5 = "v2ray.core.transport.internet.headers.noop.ConnectionConfig"

    /// v5 tcp `transportSettings`: {headerSettings, acceptProxyProtocol}. nil: plain tcp.
    static func readTCPV5(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> TCPHTTPHeaderSettings? {
        var r = try node.object(protoNames: true)
        let header = try r.take("headerSettings").map(readTCPHeaderV5) ?? nil
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        try r.finish()
        return header
    }

    /// A google.protobuf.Any: `@type` is a type URL (anything up to the last "/" is ignored, as
    /// protojson's resolver does) naming the http header or the no-op one.
    static func readTCPHeaderV5(_ node: ConfigNode) throws -> TCPHTTPHeaderSettings? {
        var r = try node.object(protoNames: true)
        let typeNode = try r.require("@type")
        let url = try typeNode.string()
        let type = url.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? url
        switch type {
        case noopHeaderTypeV5:
            try r.finish()
            return nil
        case httpHeaderTypeV5:
            // V2Ray sends no request head without `response` and crashes on a missing `request` (its
            // Authenticator reads both), so both are required here.
            let request = try r.require("request")
            let response = try r.require("response")
            try r.finish()
            var settings = TCPHTTPHeaderSettings()
            try readHTTPRequestV5(request, into: &settings.request)
            try readHTTPResponseV5(response, into: &settings.response)
            return settings
        default:
            throw typeNode.mismatch("\(JSONC.quote(httpHeaderTypeV5)) or \(JSONC.quote(noopHeaderTypeV5))")
        }
    }

    static func readHTTPRequestV5(_ node: ConfigNode, into request: inout TCPHTTPHeaderSettings.Request) throws {
        var r = try node.object(protoNames: true)
        if let version = r.take("version") {
            request.version = try checkHTTPVersion(readValueMessage(version), version)
        }
        if let method = r.take("method") {
            request.method = try checkHTTPMethod(readValueMessage(method), method)
        }
        // The message has no default path: without one V2Ray sends an empty request target and its
        // server accepts no request at all.
        let uri = try r.require("uri")
        request.paths = try uri.array().map { try checkRequestPath($0.string(), $0) }
        guard !request.paths.isEmpty else { throw uri.error("at least one request path is needed") }
        if let header = r.take("header") { request.headers = try readDisguiseHeadersV5(header) }
        try r.finish()
    }

    static func readHTTPResponseV5(_ node: ConfigNode, into response: inout TCPHTTPHeaderSettings.Response) throws {
        var r = try node.object(protoNames: true)
        if let version = r.take("version") {
            response.version = try checkHTTPVersion(readValueMessage(version), version)
        }
        if let status = r.take("status") {
            // A Status message replaces both defaults: its fields must be given.
            var s = try status.object(protoNames: true)
            let code = try s.require("code")
            response.status = try checkHTTPStatus(code.string(), code)
            let reason = try s.require("reason")
            response.reason = try checkHTTPReason(reason.string(), reason)
            try s.finish()
        }
        if let header = r.take("header") { response.headers = try readDisguiseHeadersV5(header) }
        try r.finish()
    }

    /// `{value: "..."}` (the Version and Method messages).
    static func readValueMessage(_ node: ConfigNode) throws -> String {
        var r = try node.object(protoNames: true)
        let value = try r.require("value").string()
        try r.finish()
        return value
    }

    /// `[{name, value: [..]}]`, in the order given.
    static func readDisguiseHeadersV5(_ node: ConfigNode) throws -> [TCPHTTPHeaderSettings.Header] {
        var headers: [TCPHTTPHeaderSettings.Header] = []
        var names = Set<String>()
        for item in try node.array() {
            var r = try item.object(protoNames: true)
            let name = try r.require("name").string()
            let values = try r.take("value").map { try $0.array().map { try checkHeaderValue($0.string(), name, $0) } } ?? []
            try r.finish()
            headers.append(try disguiseHeader(name, values, at: item, names: &names))
        }
        return headers
    }

    // MARK: checks

    static func disguiseHeader(_ name: String, _ values: [String], at node: ConfigNode,
                               names: inout Set<String>) throws -> TCPHTTPHeaderSettings.Header {
        guard isHeaderName(name) else { throw node.error("invalid HTTP header name \(JSONC.quote(name))") }
        guard names.insert(name.lowercased()).inserted else {
            throw node.error("HTTP header \(JSONC.quote(name)) is given twice")
        }
        return TCPHTTPHeaderSettings.Header(name: name, values: values)
    }

    static func nonEmptyString(_ node: ConfigNode) throws -> String? {
        let text = try node.string()
        return text.isEmpty ? nil : text
    }

    /// Visible ASCII only (no space, no control character): a word of the start line.
    static func isStartLineWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// "1.1", "1.0", "2"...: what follows "HTTP/".
    static func checkHTTPVersion(_ text: String, _ node: ConfigNode) throws -> String {
        guard isStartLineWord(text) else { throw node.error("invalid HTTP version \(JSONC.quote(text)) (e.g. \"1.1\")") }
        return text
    }

    static func checkHTTPMethod(_ text: String, _ node: ConfigNode) throws -> String {
        guard isHeaderName(text) else { throw node.error("invalid HTTP method \(JSONC.quote(text))") }
        return text
    }

    /// An origin-form target: "/" first, no space or control character (percent-encode those).
    static func checkRequestPath(_ text: String, _ node: ConfigNode) throws -> String {
        guard text.hasPrefix("/"), text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw node.error("invalid request path \(JSONC.quote(text)) (it must start with \"/\" and have no spaces)")
        }
        return text
    }

    static func checkHTTPStatus(_ text: String, _ node: ConfigNode) throws -> String {
        guard text.utf8.count == 3, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw node.error("invalid HTTP status \(JSONC.quote(text)) (three digits, e.g. \"200\")")
        }
        return text
    }

    static func checkHTTPReason(_ text: String, _ node: ConfigNode) throws -> String {
        guard !text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw node.error("the HTTP reason phrase has a line break or NUL")
        }
        return text
    }

    static func checkHeaderValue(_ text: String, _ name: String, _ node: ConfigNode) throws -> String {
        guard !text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw node.error("HTTP header \(JSONC.quote(name)) has a line break or NUL in its value")
        }
        return text
    }
}
