import NIOHTTP1

extension HTTPHeadLines {
    /// The head as an HTTP request (`METHOD target HTTP/1.x`), in NIOHTTP1's types.
    func requestHead() throws -> HTTPRequestHead {
        let parts = startLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ParseError.malformed("bad request line")
        }
        let version: HTTPVersion
        switch parts[2] {
        case "HTTP/1.1": version = .http1_1
        case "HTTP/1.0": version = .http1_0
        default: throw ParseError.malformed("not HTTP/1.x")
        }
        return HTTPRequestHead(version: version, method: HTTPMethod(rawValue: String(parts[0])), uri: String(parts[1]),
                               headers: HTTPHeaders(fields.map { ($0.name, $0.value) }))
    }
}
