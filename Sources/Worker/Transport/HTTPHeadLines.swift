/// An HTTP/1.x message head split off the front of a byte stream (RFC 9112 §2.1):
///
///   start-line\r\n
///   name: value\r\n ...
///   \r\n                  ← the stream that follows (upgraded protocol, early payload) is not consumed
///
/// Used by both sides of the ws and httpupgrade transports: the server reads request heads, the client
/// the 101. Reading the head here rather than with a general HTTP decoder keeps the bytes behind the
/// head in our hands, so they can be passed on in order without any hand-over between handlers.
struct HTTPHeadLines: Equatable {
    var startLine: String
    /// Field names as sent (compare case-insensitively), values without surrounding whitespace.
    var fields: [Field]

    struct Field: Equatable {
        var name: String
        var value: String
    }

    enum ParseError: Error, Equatable, CustomStringConvertible {
        case tooLong(limit: Int)
        case malformed(String)
        var description: String {
            switch self {
            case .tooLong(let limit): "HTTP head longer than \(limit) bytes"
            case .malformed(let why): "malformed HTTP head: \(why)"
            }
        }
    }

    /// At most this many header fields.
    static let maximumFields = 100

    /// nil: the blank line has not arrived yet (nothing consumed; `scanned` remembers how far the
    /// search got, so a head that trickles in is not rescanned from the start). On success the head
    /// is removed from `buffer`.
    static func parse(_ buffer: inout [UInt8], scanned: inout Int, limit: Int) throws -> HTTPHeadLines? {
        guard let end = headEnd(buffer, from: max(scanned - 3, 0)) else {
            scanned = buffer.count
            if buffer.count > limit { throw ParseError.tooLong(limit: limit) }
            return nil
        }
        guard end <= limit else { throw ParseError.tooLong(limit: limit) }
        let head = buffer[..<(end - 4)]
        guard !head.contains(0) else { throw ParseError.malformed("NUL byte") }
        let text = String(decoding: head, as: UTF8.self)
        buffer.removeFirst(end)
        scanned = 0
        var lines = text.components(separatedBy: "\r\n")[...]
        guard let start = lines.popFirst(), !start.isEmpty else { throw ParseError.malformed("empty start line") }
        guard lines.count <= maximumFields else { throw ParseError.malformed("more than \(maximumFields) header fields") }
        var fields: [Field] = []
        fields.reserveCapacity(lines.count)
        for line in lines {
            // Bare CR or LF inside a line, or obsolete line folding, are not accepted (RFC 9112 §2.2, §5.2).
            guard !line.contains("\r"), !line.contains("\n"), let first = line.first, first != " ", first != "\t",
                  let colon = line.firstIndex(of: ":")
            else { throw ParseError.malformed("bad header line") }
            let name = String(line[..<colon])
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else { throw ParseError.malformed("bad header name") }
            fields.append(Field(name: name, value: String(line[line.index(after: colon)...].trimmingWhitespace())))
        }
        return HTTPHeadLines(startLine: start, fields: fields)
    }

    /// The first value of a field, by case-insensitive name.
    func value(_ name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    /// Index just past the first "\r\n\r\n" at or after `start`.
    private static func headEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start + 3
        while i < bytes.count {
            if bytes[i] == 10, bytes[i - 1] == 13, bytes[i - 2] == 10, bytes[i - 3] == 13 { return i + 1 }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (RFC 9110 optional whitespace).
    func trimmingWhitespace() -> SubSequence {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
