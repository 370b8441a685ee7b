// JSON with comments, as V2Ray reads it: RFC 8259 JSON plus `// line` and `/* block */` comments
// anywhere whitespace may appear. Comment markers inside string literals are ordinary characters
// ("http://x" stays intact) because comments are only recognised where the reader expects whitespace.
//
// Comments are skipped in place rather than stripped into a second buffer, so every byte offset the
// reader reports is an offset into the original text and line/column numbers match what the operator's
// editor shows (comments and their non-ASCII text included).
//
// Leniencies, each deliberate:
// - one trailing comma before `}` or `]` is accepted (hand-edited configs often have one; nothing is lost);
// - a UTF-8 byte order mark at the start is skipped (Windows editors write one).
// Strictness beyond RFC 8259, each deliberate:
// - duplicate keys in one object are an error (Go's encoding/json silently keeps the last one);
// - nesting deeper than `maximumDepth` is an error, so hostile input cannot exhaust the stack.

enum JSONC {
    /// Deep enough for any real config (V2Ray's own nest about 8 levels), shallow enough that the
    /// recursive reader stays far from the stack limit.
    static let maximumDepth = 128

    struct SyntaxError: Error, Equatable {
        var line: Int
        var column: Int
        var reason: String
    }

    /// Parses one JSONC document. Returns nil when the text holds nothing but whitespace and comments.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue? {
        if let bad = firstInvalidUTF8(in: bytes) {
            throw syntaxError(at: bad, in: bytes, "invalid UTF-8 byte 0x\(hex(bytes[bad]))")
        }
        var reader = Reader(bytes: bytes)
        return try reader.document()
    }

    /// 1-based line and column of a byte offset. Columns count Unicode scalars, as editors do, so a line
    /// of Chinese comment text does not push the column off by a factor of three.
    static func position(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var k = hasByteOrderMark(bytes) ? 3 : 0
        while k < offset && k < bytes.count {
            let b = bytes[k]
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {  // not a continuation byte: a new scalar starts here
                column += 1
            }
            k += 1
        }
        return (line, column)
    }

    static func syntaxError(at offset: Int, in bytes: [UInt8], _ reason: String) -> SyntaxError {
        let (line, column) = position(of: offset, in: bytes)
        return SyntaxError(line: line, column: column, reason: reason)
    }

    static func hasByteOrderMark(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
    }

    /// Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode 15, table 3-7:
    /// no overlong forms, no surrogates, nothing above U+10FFFF), or nil if all of it is valid.
    static func firstInvalidUTF8(in bytes: [UInt8]) -> Int? {
        var k = 0
        let n = bytes.count
        while k < n {
            let b0 = bytes[k]
            if b0 < 0x80 {
                k += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return k
            }
            guard k + length <= n, (low...high).contains(bytes[k + 1]) else { return k }
            for j in 2..<length where bytes[k + j] & 0xC0 != 0x80 { return k }
            k += length
        }
        return nil
    }

    static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 0x0F)]])
    }
}

/// Recursive-descent reader over the UTF-8 bytes (already validated). Depth is bounded, so recursion is safe.
private struct Reader {
    let bytes: [UInt8]
    var i = 0
    var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        if JSONC.hasByteOrderMark(bytes) { i = 3 }
    }

    mutating func document() throws -> JSONValue? {
        try skipSpace()
        if i == bytes.count { return nil }
        let value = try readValue()
        try skipSpace()
        if i < bytes.count { throw fail(at: i, "unexpected \(describe(at: i)) after the end of the document") }
        return value
    }

    // MARK: whitespace and comments

    mutating func skipSpace() throws {
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                i += 1
            case UInt8(ascii: "/"):
                try skipComment()
            default:
                return
            }
        }
    }

    mutating func skipComment() throws {
        let start = i
        let next = i + 1 < bytes.count ? bytes[i + 1] : 0
        if next == UInt8(ascii: "/") {
            i += 2
            while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }
        } else if next == UInt8(ascii: "*") {
            i += 2
            while i + 1 < bytes.count {
                if bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/") {
                    i += 2
                    return
                }
                i += 1
            }
            throw fail(at: start, "unterminated /* comment")
        } else {
            throw fail(at: start, "unexpected character '/'")
        }
    }

    // MARK: values

    mutating func readValue() throws -> JSONValue {
        guard i < bytes.count else { throw endOfInput() }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try readObject()
        case UInt8(ascii: "["): return try readArray()
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try readLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try readLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try readLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try readNumber())
        default: throw fail(at: i, "unexpected \(describe(at: i))")
        }
    }

    mutating func enterContainer() throws {
        depth += 1
        if depth > JSONC.maximumDepth {
            throw fail(at: i, "nesting deeper than \(JSONC.maximumDepth) levels")
        }
    }

    mutating func readObject() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        i += 1  // '{'
        var members: [JSONObject.Member] = []
        var seen = Set<String>()
        try skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(JSONObject(members))
        }
        while true {
            try skipSpace()
            guard i < bytes.count else { throw endOfInput() }
            // A '}' right after a ',' is the accepted trailing comma.
            if bytes[i] == UInt8(ascii: "}") && !members.isEmpty {
                i += 1
                return .object(JSONObject(members))
            }
            guard bytes[i] == UInt8(ascii: "\"") else {
                throw fail(at: i, "expected a string key, found \(describe(at: i))")
            }
            let keyStart = i
            let key = try readString()
            guard seen.insert(key).inserted else {
                throw fail(at: keyStart, "duplicate key \(JSONC.quote(key))")
            }
            try skipSpace()
            guard i < bytes.count else { throw endOfInput() }
            guard bytes[i] == UInt8(ascii: ":") else { throw fail(at: i, "expected ':' after the key") }
            i += 1
            try skipSpace()
            let value = try readValue()
            members.append(.init(key: key, value: value))
            try skipSpace()
            guard i < bytes.count else { throw endOfInput() }
            switch bytes[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return .object(JSONObject(members))
            default: throw fail(at: i, "expected ',' or '}'")
            }
        }
    }

    mutating func readArray() throws -> JSONValue {
        try enterContainer()
        defer { depth -= 1 }
        i += 1  // '['
        var elements: [JSONValue] = []
        try skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        while true {
            try skipSpace()
            guard i < bytes.count else { throw endOfInput() }
            if bytes[i] == UInt8(ascii: "]") && !elements.isEmpty {  // trailing comma
                i += 1
                return .array(elements)
            }
            elements.append(try readValue())
            try skipSpace()
            guard i < bytes.count else { throw endOfInput() }
            switch bytes[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): i += 1; return .array(elements)
            default: throw fail(at: i, "expected ',' or ']'")
            }
        }
    }

    mutating func readLiteral(_ word: StaticString) throws {
        let start = i
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for expected in text {
            guard i < bytes.count else { throw endOfInput() }
            guard bytes[i] == expected else { throw fail(at: start, "invalid literal (expected \(word))") }
            i += 1
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as written.
    mutating func readNumber() throws -> String {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw endOfInput() }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count && isDigit(bytes[i]) { throw fail(at: start, "invalid number: leading zero") }
        } else {
            try digits(start)
        }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            i += 1
            try digits(start)
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            try digits(start)
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    /// One or more digits; `start` is where the number began, for the message.
    mutating func digits(_ start: Int) throws {
        guard i < bytes.count else { throw endOfInput() }
        guard isDigit(bytes[i]) else { throw fail(at: i, "invalid number: expected a digit") }
        while i < bytes.count && isDigit(bytes[i]) { i += 1 }
    }

    func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    mutating func readString() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw endOfInput() }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)  // bytes were validated up front
            case UInt8(ascii: "\\"):
                try readEscape(into: &out)
            case 0..<0x20:
                throw fail(at: i, "control character U+00\(JSONC.hex(b)) in a string (write it as an escape)")
            default:
                out.append(b)
                i += 1
            }
        }
    }

    mutating func readEscape(into out: inout [UInt8]) throws {
        let start = i
        i += 1  // backslash
        guard i < bytes.count else { throw endOfInput() }
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""): out.append(c)
        case UInt8(ascii: "\\"): out.append(c)
        case UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hex4()
            if (0xD800...0xDBFF).contains(code) {
                // A high surrogate must be followed by an escaped low surrogate (RFC 8259 §7).
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw fail(at: start, "invalid \\u escape: lone surrogate")
                }
                i += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail(at: start, "invalid \\u escape: lone surrogate") }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(code) {
                throw fail(at: start, "invalid \\u escape: lone surrogate")
            }
            // Surrogates were excluded above, so the scalar always exists.
            out.append(contentsOf: Array(String(Unicode.Scalar(code)!).utf8))
        default:
            throw fail(at: start, "invalid escape \(describe(at: start + 1, prefix: "\\"))")
        }
    }

    mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw endOfInput() }
            let b = bytes[i]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail(at: i, "invalid \\u escape: expected 4 hex digits")
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    // MARK: errors

    func fail(at offset: Int, _ reason: String) -> JSONC.SyntaxError {
        JSONC.syntaxError(at: offset, in: bytes, reason)
    }

    func endOfInput() -> JSONC.SyntaxError { fail(at: bytes.count, "unexpected end of input") }

    /// "character 'x'" for the scalar starting at `offset` (U+XXXX for invisible ones).
    func describe(at offset: Int, prefix: String = "") -> String {
        var end = offset + 1
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
        let text = String(decoding: bytes[offset..<end], as: UTF8.self)
        guard let scalar = text.unicodeScalars.first else { return "end of input" }
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar.properties.generalCategory == .format {
            return "character U+\(String(scalar.value, radix: 16, uppercase: true))"
        }
        return "character '\(prefix)\(text)'"
    }
}

extension JSONC {
    /// A string as JSON would write it, cut short for messages (a hostile config may hold a megabyte string).
    static func quote(_ text: String, limit: Int = 64) -> String {
        var out = "\""
        for (n, scalar) in text.unicodeScalars.enumerated() {
            if n == limit {
                out += "…"
                break
            }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u00" + JSONC.hex(UInt8(scalar.value))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
