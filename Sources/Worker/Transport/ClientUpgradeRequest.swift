import Foundation
import NIOWebSocket
import Shared

/// What the client side of the ws and httpupgrade transports sends and expects (vmess-protocol.md
/// §12): the request head, where early data goes, and the checks on the server's 101. Pure.
struct ClientUpgradeRequest {
    enum Kind { case webSocket, httpUpgrade }

    /// Where the first write's leading bytes travel.
    enum EarlyDataPlacement: Equatable {
        case none
        /// base64url without padding appended to the path (v2fly path form, §12.1).
        case path(limit: Int)
        /// In a header: raw base64url for WebSocket (Xray/v2fly header form), padded for httpupgrade (v2fly).
        case header(name: String, limit: Int)
        /// httpupgrade only: the request head and the first writes go out at once, without waiting
        /// for the 101 (Xray's client with `ed`, §12.2).
        case pipelined
    }

    let kind: Kind
    let path: String
    /// Value of the Host header.
    let host: String
    let headers: [(String, String)]
    let earlyData: EarlyDataPlacement
    /// Sec-WebSocket-Key (WebSocket only).
    let key: String

    init(webSocket ws: WebSocketSettings, authority: String, key: String = NIOWebSocketClientUpgrader.randomRequestKey()) {
        kind = .webSocket
        var path = ws.path
        var placement = EarlyDataPlacement.none
        if ws.maxEarlyData > 0 {
            placement = ws.earlyDataHeaderName.map { .header(name: $0, limit: ws.maxEarlyData) } ?? .path(limit: ws.maxEarlyData)
        }
        // Xray's share-link syntax `/path?ed=2048`: ED in Sec-WebSocket-Protocol, never `?ed=` on the wire.
        if let (stripped, limit) = Self.splitEarlyDataQuery(path) {
            path = stripped
            placement = .header(name: "Sec-WebSocket-Protocol", limit: limit)
        }
        self.path = path
        self.host = ws.host ?? authority
        self.headers = ws.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.earlyData = placement
        self.key = key
    }

    init(httpUpgrade hu: HTTPUpgradeSettings, authority: String) {
        kind = .httpUpgrade
        path = hu.path
        host = hu.host ?? authority
        headers = hu.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if hu.maxEarlyData > 0 {
            earlyData = hu.earlyDataHeaderName.map { .header(name: $0, limit: hu.maxEarlyData) } ?? .pipelined
        } else {
            earlyData = .none
        }
        key = ""
    }

    /// Whether the request waits for the protocol handler's first write (to carry part of it).
    var waitsForFirstWrite: Bool { earlyData != .none }

    /// How many leading bytes of the first write go inside the request.
    var earlyDataLimit: Int {
        switch earlyData {
        case .none, .pipelined: 0
        case .path(let limit), .header(_, let limit): limit
        }
    }

    /// The request head, with `early` (≤ earlyDataLimit bytes) placed as configured.
    func head(early: [UInt8] = []) -> String {
        var target = Self.encodedTarget(path)
        var lines: [(String, String)] = [("Host", host)]
        lines += headers
        switch kind {
        case .webSocket:
            lines += [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                      ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
        case .httpUpgrade:
            lines += [("Connection", "Upgrade"), ("Upgrade", "websocket")]
        }
        if !early.isEmpty {
            switch earlyData {
            case .path: target += EarlyData.encodeRaw(early)
            case .header(let name, _):
                lines.append((name, kind == .webSocket ? EarlyData.encodeRaw(early) : EarlyData.encodePadded(early)))
            case .none, .pipelined: break
            }
        }
        var text = "GET \(target) HTTP/1.1\r\n"
        for (name, value) in lines { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    enum Refused: Error, CustomStringConvertible {
        case status(String)
        case header(String)
        var description: String {
            switch self {
            case .status(let s): "the server answered \"\(s)\" instead of 101 Switching Protocols"
            case .header(let s): "the server's 101 has a wrong \(s) header"
            }
        }
    }

    /// The checks V2Ray's and Xray's dialers make on the answer.
    func validate(_ response: UpgradeResponseHead) throws {
        switch kind {
        case .webSocket:
            guard response.code == 101 else { throw Refused.status(response.status) }
            guard response.value("upgrade")?.lowercased() == "websocket" else { throw Refused.header("Upgrade") }
            guard let connection = response.value("connection"),
                  connection.lowercased().split(separator: ",").contains(where: { $0.trimmingWhitespace() == "upgrade" })
            else { throw Refused.header("Connection") }
            guard response.value("sec-websocket-accept") == UpgradeRequestCheck.acceptValue(key: key) else {
                throw Refused.header("Sec-WebSocket-Accept")
            }
        case .httpUpgrade:
            guard response.status == "101 Switching Protocols" else { throw Refused.status(response.status) }
            guard response.value("upgrade")?.lowercased() == "websocket" else { throw Refused.header("Upgrade") }
            guard response.value("connection")?.lowercased() == "upgrade" else { throw Refused.header("Connection") }
        }
    }

    /// The configured path as a request target, percent-encoded where it has to be (spaces,
    /// non-ASCII), as Go's URL type sends it. Text that already has escapes is left alone.
    static func encodedTarget(_ path: String) -> String {
        guard !path.contains("%") else { return path }
        let q = path.firstIndex(of: "?") ?? path.endIndex
        let encodedPath = path[..<q].addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String(path[..<q])
        guard q < path.endIndex else { return encodedPath }
        let query = path[path.index(after: q)...]
        return encodedPath + "?" + (query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? String(query))
    }

    /// `/ws?ed=2048` → ("/ws", 2048); other query parameters stay on the path.
    static func splitEarlyDataQuery(_ path: String) -> (String, Int)? {
        guard let q = path.firstIndex(of: "?") else { return nil }
        var kept: [Substring] = []
        var limit: Int?
        for item in path[path.index(after: q)...].split(separator: "&") {
            if item.hasPrefix("ed="), let n = Int(item.dropFirst(3)), n > 0 { limit = n } else { kept.append(item) }
        }
        guard let limit else { return nil }
        let base = String(path[..<q])
        return (kept.isEmpty ? base : base + "?" + kept.joined(separator: "&"), limit)
    }
}
