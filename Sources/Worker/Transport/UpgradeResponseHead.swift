/// The server's answer to an upgrade request, as the client side of the ws and httpupgrade
/// transports reads it: `HTTP/1.1 101 Switching Protocols` and its header fields.
struct UpgradeResponseHead: Equatable {
    /// "101 Switching Protocols" — the httpupgrade clients compare this text exactly (§12.2).
    var status: String
    var code: Int
    var head: HTTPHeadLines

    /// Longer heads are not an upgrade response (Go's clients allow about as much).
    static let maximumSize = 16 * 1024

    func value(_ name: String) -> String? { head.value(name) }

    /// nil: not complete yet. On success the head's bytes are consumed and whatever followed it
    /// (the stream's first bytes) stays in `buffer`.
    static func parse(_ buffer: inout [UInt8], scanned: inout Int) throws -> UpgradeResponseHead? {
        guard let head = try HTTPHeadLines.parse(&buffer, scanned: &scanned, limit: maximumSize) else { return nil }
        let line = head.startLine
        guard line.hasPrefix("HTTP/1.") else { throw HTTPHeadLines.ParseError.malformed("not an HTTP/1.x response") }
        let status = line.drop { $0 != " " }.dropFirst()
        guard status.count >= 3, let code = Int(status.prefix(3)) else {
            throw HTTPHeadLines.ParseError.malformed("bad status line")
        }
        return UpgradeResponseHead(status: String(status), code: code, head: head)
    }

    /// Without keeping a scan position (tests, one-shot use).
    static func parse(_ buffer: inout [UInt8]) throws -> UpgradeResponseHead? {
        var scanned = 0
        return try parse(&buffer, scanned: &scanned)
    }
}
