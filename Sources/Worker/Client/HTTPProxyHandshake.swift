import Foundation
import NIOCore
import Shared

/// The HTTP proxy request parser as a pure state machine. One request head decides the connection:
///
///     CONNECT host:port HTTP/1.1        → "200 Connection established", then a raw tunnel
///     GET http://host[:port]/p?q HTTP/1.1 → forwarded as "GET /p?q HTTP/1.1" with the proxy headers
///                                          removed and "Connection: close", then raw bytes both ways
///
/// Closing after one forwarded exchange keeps the relay a plain byte pipe (no parsing of bodies or
/// responses): a keep-alive client simply opens a new connection for its next request, whose target
/// may be another host. Errors are status lines: 400 for a malformed request, 407 for missing or
/// wrong credentials, 431 for an oversized head; 502 (`failureReply`) when the tunnel fails before the
/// target answered.
struct HTTPProxyHandshake: ClientHandshake {
    static let maxHeadSize = 16 * 1024
    static let maxHeaderCount = 128

    let name = "http"
    /// "Basic base64(user:pass)" credentials, decoded to "user:pass".
    private let credentials: Set<String>
    private var scanned = 0
    private var done = false

    init(settings: HTTPInboundSettings) {
        credentials = Set(settings.accounts.map { "\($0.user):\($0.pass)" })
    }

    static func response(_ status: String, extra: String = "") -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\n\(extra)Connection: close\r\nContent-Length: 0\r\n\r\n".utf8)
    }

    static let badRequest = response("400 Bad Request")
    static let authenticationRequired = response("407 Proxy Authentication Required",
                                                 extra: "Proxy-Authenticate: Basic realm=\"proxy\"\r\n")
    static let headTooLarge = response("431 Request Header Fields Too Large")
    static let badGateway = response("502 Bad Gateway")
    static let established: [UInt8] = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    mutating func step(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        guard !done else { return .needMore }
        guard let headLength = findEndOfHead(buffer) else {
            if buffer.readableBytes > Self.maxHeadSize { return refuse(Self.headTooLarge) }
            return .needMore
        }
        let head = buffer.readBytes(length: headLength)!
        done = true
        switch parse(head) {
        case .failure(let reply): return .refuse(reply)
        case .success(let request): return .connect(request)
        }
    }

    private mutating func refuse(_ reply: [UInt8]) -> ClientHandshakeStep {
        done = true
        return .refuse(reply)
    }

    /// Length of the head including its blank line, remembering how far it looked so that a head
    /// arriving byte by byte is scanned once, not once per byte.
    private mutating func findEndOfHead(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            let limit = min(raw.count, Self.maxHeadSize + 4)
            var i = max(0, scanned - 3)
            while i < limit {
                if raw[i] == UInt8(ascii: "\n") {
                    if i >= 1 && raw[i - 1] == UInt8(ascii: "\n") { return i + 1 }
                    if i >= 2 && raw[i - 1] == UInt8(ascii: "\r") && raw[i - 2] == UInt8(ascii: "\n") { return i + 1 }
                }
                i += 1
            }
            scanned = limit
            return nil
        }
    }

    private enum Parsed { case success(ClientRequest), failure([UInt8]) }

    private func parse(_ head: [UInt8]) -> Parsed {
        // Lines end in CRLF, or LF alone (tolerated, as most servers do).
        var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let requestLine = lines.first, lines.count - 1 <= Self.maxHeaderCount else { return .failure(Self.badRequest) }
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3,
              let method = Self.token(parts[0]), let target = Self.visible(parts[1]),
              let version = Self.visible(parts[2]), version.hasPrefix("HTTP/1.") else { return .failure(Self.badRequest) }

        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            // obs-fold (a continuation line) is refused, as RFC 9112 allows a proxy to do.
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), line.first != UInt8(ascii: " "),
                  line.first != UInt8(ascii: "\t"), let name = Self.token(line[line.startIndex..<colon]),
                  !line.contains(where: { $0 < 0x20 && $0 != UInt8(ascii: "\t") }) else { return .failure(Self.badRequest) }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }

        if !credentials.isEmpty && !authorized(headers) { return .failure(Self.authenticationRequired) }

        if method == "CONNECT" {
            guard let (address, port) = Self.authority(target, defaultPort: nil) else { return .failure(Self.badRequest) }
            return .success(ClientRequest(destination: Destination(network: .tcp, address: address, port: port),
                                          reply: Self.established))
        }
        guard let uri = Self.absoluteHTTP(target),
              let (address, port) = Self.authority(uri.authority, defaultPort: 80) else { return .failure(Self.badRequest) }
        return .success(ClientRequest(destination: Destination(network: .tcp, address: address, port: port),
                                      payload: ByteBuffer(bytes: rewrite(method: method, path: uri.path, version: version,
                                                                         headers: headers, authority: uri.authority)),
                                      failureReply: Self.badGateway))
    }

    private func authorized(_ headers: [(name: String, value: String)]) -> Bool {
        for h in headers where h.name.lowercased() == "proxy-authorization" {
            let parts = h.value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "basic",
                  let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)) else { continue }
            if credentials.contains(String(decoding: data, as: UTF8.self)) { return true }
        }
        return false
    }

    /// The forwarded head: origin-form target, hop-by-hop and proxy headers removed (RFC 9110 §7.6.1),
    /// Host kept or added, and "Connection: close" (or the client's Upgrade request passed on).
    private func rewrite(method: String, path: String, version: String, headers: [(name: String, value: String)],
                         authority: String) -> [UInt8] {
        var connectionTokens = Set<String>()
        for h in headers where h.name.lowercased() == "connection" || h.name.lowercased() == "proxy-connection" {
            for t in h.value.split(separator: ",") { connectionTokens.insert(t.trimmingCharacters(in: .whitespaces).lowercased()) }
        }
        let upgrading = connectionTokens.contains("upgrade")
        var drop: Set<String> = ["connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "trailer"]
        drop.formUnion(connectionTokens.subtracting(["upgrade", "close", "keep-alive"]))
        if !upgrading { drop.insert("upgrade") }
        let kept = headers.filter { !drop.contains($0.name.lowercased()) }
        var out = "\(method) \(path) \(version)\r\n"
        if !kept.contains(where: { $0.name.lowercased() == "host" }) { out += "Host: \(authority)\r\n" }
        for h in kept { out += "\(h.name): \(h.value)\r\n" }
        out += upgrading ? "Connection: Upgrade\r\n\r\n" : "Connection: close\r\n\r\n"
        return Array(out.utf8)
    }

    // MARK: pieces

    /// An RFC 9110 token (method, header name).
    static func token(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.allSatisfy({ c in
            (0x21...0x7E).contains(c) && !"\"(),/:;<=>?@[\\]{}".utf8.contains(c)
        }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func visible(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `http://authority/path?query` → (authority, "/path?query"); the fragment is dropped.
    static func absoluteHTTP(_ target: String) -> (authority: String, path: String)? {
        guard target.count > 7, target.prefix(7).lowercased() == "http://" else { return nil }
        var rest = target.dropFirst(7)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[..<end]
        // userinfo@ is not for the origin server (and never sent on).
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var path = String(rest[end...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.isEmpty else { return nil }
        return (String(authority), path)
    }

    /// `host:port`, `[v6]:port` or (with a default port) a bare host.
    static func authority(_ text: String, defaultPort: UInt16?) -> (VMessAddress, UInt16)? {
        var host = Substring(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = UInt16(after.dropFirst()), p != 0 else { return nil }
                port = p
            } else if !after.isEmpty {
                return nil
            }
            host = host[host.index(after: host.startIndex)..<close]
            guard let ip = IPLiteral.parse(String(host)), case .ipv6 = ip, let port else { return nil }
            return (ip, port)
        }
        if let colon = host.lastIndex(of: ":") {
            guard let p = UInt16(host[host.index(after: colon)...]), p != 0 else { return nil }
            port = p
            host = host[..<colon]
        }
        guard let port, !host.isEmpty, host.utf8.count <= 255 else { return nil }
        let bytes = Array(host.utf8)
        guard case .address(let address, _) = VMessAddress.parse([0x02, UInt8(bytes.count)] + bytes) else { return nil }
        return (address, port)
    }
}
