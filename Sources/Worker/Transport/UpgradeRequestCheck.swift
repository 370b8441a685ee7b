import Foundation
import NIOHTTP1
import Shared

/// The server's decision on an HTTP request head that should open a WebSocket or httpupgrade stream
/// (vmess-protocol.md §12). Pure: request head in, decision out; ServerUpgradeHandler carries it out.
///
/// Order of checks, as the reference servers do it: path (404), Host if configured (404), then the
/// upgrade itself (400 for a request that is not a well-formed upgrade). A refused request never
/// gets an upgrade response.
struct UpgradeRequestCheck {
    enum Kind {
        case webSocket(WebSocketSettings)
        case httpUpgrade(HTTPUpgradeSettings)
    }

    enum Decision: Equatable {
        /// Answer 101 with `responseHeaders`, then hand `earlyData` to the protocol handler first.
        case upgrade(earlyData: [UInt8], responseHeaders: [HeaderField])
        case refuse(Refusal)
    }

    struct HeaderField: Equatable {
        var name: String
        var value: String
    }

    enum Refusal: Equatable {
        case notFound, badRequest, methodNotAllowed

        var statusLine: String {
            switch self {
            case .notFound: "404 Not Found"
            case .badRequest: "400 Bad Request"
            case .methodNotAllowed: "405 Method Not Allowed"
            }
        }
    }

    let kind: Kind
    /// The configured path without any query (`/ws?ed=2048` is client-side syntax, §12.1).
    let path: String
    let host: String?

    init(_ kind: Kind) {
        self.kind = kind
        let configured: String
        switch kind {
        case .webSocket(let ws): (configured, host) = (ws.path, ws.host)
        case .httpUpgrade(let hu): (configured, host) = (hu.path, hu.host)
        }
        path = String(configured.prefix { $0 != "?" })
    }

    func decide(_ head: HTTPRequestHead) -> Decision {
        switch kind {
        case .webSocket(let ws): decideWebSocket(head, ws)
        case .httpUpgrade(let hu): decideHTTPUpgrade(head, hu)
        }
    }

    // MARK: WebSocket (§12.1)

    private func decideWebSocket(_ head: HTTPRequestHead, _ ws: WebSocketSettings) -> Decision {
        var earlyData: [UInt8] = []
        // v2fly's path form: ED appended directly to the path; the raw URI must start with the path.
        let pathForm = ws.maxEarlyData > 0 && ws.earlyDataHeaderName == nil
        if pathForm {
            guard head.uri.hasPrefix(path) else { return .refuse(.notFound) }
            let suffix = head.uri.dropFirst(path.count)
            if !suffix.isEmpty {
                guard let bytes = EarlyData.decodeTolerant(suffix), bytes.count <= ws.maxEarlyData else {
                    return .refuse(.notFound)
                }
                earlyData = bytes
            }
        } else if Self.pathOnly(head.uri) != path {
            return .refuse(.notFound)
        }
        guard hostMatches(head) else { return .refuse(.notFound) }
        guard head.method == .GET else { return .refuse(.methodNotAllowed) }
        guard Self.tokens(head.headers, "connection").contains("upgrade"),
              Self.tokens(head.headers, "upgrade").contains("websocket"),
              head.headers["sec-websocket-version"].first == "13",
              let key = head.headers["sec-websocket-key"].first, Self.isWebSocketKey(key)
        else { return .refuse(.badRequest) }

        var response = [HeaderField(name: "Upgrade", value: "websocket"),
                        HeaderField(name: "Connection", value: "Upgrade"),
                        HeaderField(name: "Sec-WebSocket-Accept", value: Self.acceptValue(key: key))]
        // Header form: Xray always reads Sec-WebSocket-Protocol and echoes it when it carried data;
        // v2fly reads the header named by earlyDataHeaderName (echoed only if that is this one).
        if earlyData.isEmpty, let value = head.headers["sec-websocket-protocol"].first,
           let bytes = EarlyData.decodeTolerant(value), !bytes.isEmpty {
            earlyData = bytes
            response.append(HeaderField(name: "Sec-WebSocket-Protocol", value: value))
        } else if earlyData.isEmpty, let name = ws.earlyDataHeaderName,
                  name.lowercased() != "sec-websocket-protocol",
                  let value = head.headers[name].first, let bytes = EarlyData.decodeTolerant(value) {
            earlyData = bytes
        }
        return .upgrade(earlyData: earlyData, responseHeaders: response)
    }

    /// RFC 6455 §4.2.1: the key is base64 of 16 bytes.
    static func isWebSocketKey(_ key: String) -> Bool {
        EarlyData.decodeTolerant(key)?.count == 16
    }

    /// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
    static func acceptValue(key: String) -> String {
        let digest = Digest.sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    // MARK: httpupgrade (§12.2)

    private func decideHTTPUpgrade(_ head: HTTPRequestHead, _ hu: HTTPUpgradeSettings) -> Decision {
        guard Self.pathOnly(head.uri) == path, hostMatches(head) else { return .refuse(.notFound) }
        // Xray: the lower-cased values must equal these words exactly (no token lists).
        guard head.headers["connection"].first?.lowercased() == "upgrade",
              head.headers["upgrade"].first?.lowercased() == "websocket"
        else { return .refuse(.badRequest) }
        var earlyData: [UInt8] = []
        if hu.maxEarlyData > 0, let name = hu.earlyDataHeaderName, let value = head.headers[name].first {
            // v2fly drops the connection on a decode error. Its client may put more than maxEarlyData
            // bytes in the header and then send the bytes past maxEarlyData again after the head, so
            // only the first maxEarlyData bytes count.
            guard let bytes = EarlyData.decodePadded(value) else { return .refuse(.badRequest) }
            earlyData = Array(bytes.prefix(hu.maxEarlyData))
        }
        return .upgrade(earlyData: earlyData, responseHeaders: [HeaderField(name: "Connection", value: "Upgrade"),
                                                               HeaderField(name: "Upgrade", value: "websocket")])
    }

    // MARK: pieces

    /// Xray's IsValidHTTPHost: case-insensitive, a port on the request's Host is ignored.
    private func hostMatches(_ head: HTTPRequestHead) -> Bool {
        guard let host else { return true }
        guard let given = head.headers["host"].first else { return false }
        return Self.hostWithoutPort(given).lowercased() == Self.hostWithoutPort(host).lowercased()
    }

    static func hostWithoutPort(_ text: String) -> Substring {
        if text.hasPrefix("[") {  // [v6]:port
            return text.dropFirst().prefix { $0 != "]" }
        }
        if text.filter({ $0 == ":" }).count == 1 { return text.prefix { $0 != ":" } }
        return Substring(text)
    }

    /// The path of a request target (origin form), without the query and percent-decoded: Go's
    /// servers compare the decoded `URL.Path`, so a configured "/下载" matches "/%E4%B8%8B%E8%BD%BD".
    static func pathOnly(_ uri: String) -> String {
        let raw = String(uri.prefix { $0 != "?" && $0 != "#" })
        guard raw.contains("%") else { return raw }
        return raw.removingPercentEncoding ?? raw
    }

    /// Comma-separated, case-insensitive tokens of a header (all its lines).
    static func tokens(_ headers: HTTPHeaders, _ name: String) -> [String] {
        headers[name].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }
}
