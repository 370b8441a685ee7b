// Typed access to the value tree with the location attached, so that every check can fail with a
// ConfigError naming the file, the JSON path and what was wrong, without threading those through every
// function by hand.

/// A JSON path as error messages print it: `inbounds[0].settings.clients[1].id`. Keys that are not plain
/// identifiers are bracketed and quoted (`policy.levels["0"].handshake`) so the path stays unambiguous.
struct JSONPath: CustomStringConvertible, Equatable {
    private(set) var description: String = ""

    static let root = JSONPath()

    func appending(key: String) -> JSONPath {
        var path = self
        if Self.isIdentifier(key) {
            path.description += description.isEmpty ? key : "." + key
        } else {
            path.description += "[" + JSONC.quote(key, limit: 40) + "]"
        }
        return path
    }

    func appending(index: Int) -> JSONPath {
        var path = self
        path.description += "[\(index)]"
        return path
    }

    private static func isIdentifier(_ key: String) -> Bool {
        guard let first = key.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return key.utf8.allSatisfy { b in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: "$")
        }
    }
}

/// One value of the document and where it is.
struct ConfigNode {
    let value: JSONValue
    let path: JSONPath
    let file: String
    /// v5 documents are read with protojson, which takes any number written as a string too
    /// (`"maxEarlyData": "2048"`); set on a v5 root and inherited by everything under it.
    var numbersMayBeStrings = false

    init(value: JSONValue, path: JSONPath, file: String, numbersMayBeStrings: Bool = false) {
        self.value = value
        self.path = path
        self.file = file
        self.numbersMayBeStrings = numbersMayBeStrings
    }

    /// A value inside this one (a member or an element): same file, same reading rules.
    func child(_ value: JSONValue, at path: JSONPath) -> ConfigNode {
        ConfigNode(value: value, path: path, file: file, numbersMayBeStrings: numbersMayBeStrings)
    }

    /// The number's text: a JSON number, or in a v5 document a string holding one.
    private var numberText: String? {
        switch value {
        case .number(let text): text
        case .string(let text) where numbersMayBeStrings: text
        default: nil
        }
    }

    func error(_ reason: String) -> ConfigError {
        ConfigError(file: file, path: path.description, reason: reason)
    }

    /// "expected an integer 1-65535, got boolean" / "…, got 70000" / "…, got \"abc\"".
    func mismatch(_ expected: String) -> ConfigError {
        error("expected \(expected), got \(shortDescription)")
    }

    var shortDescription: String {
        switch value {
        case .number(let text): text.count > 40 ? String(text.prefix(40)) + "…" : text
        case .string(let text): JSONC.quote(text)
        default: value.kindName
        }
    }

    // MARK: typed readers

    func object(protoNames: Bool = false) throws -> ObjectReader {
        guard case .object(let object) = value else { throw mismatch("an object") }
        return try ObjectReader(node: self, object: object, protoNames: protoNames)
    }

    func array() throws -> [ConfigNode] {
        guard case .array(let elements) = value else { throw mismatch("an array") }
        return elements.enumerated().map { child($1, at: path.appending(index: $0)) }
    }

    func string() throws -> String {
        guard case .string(let text) = value else { throw mismatch("a string") }
        return text
    }

    func bool() throws -> Bool {
        guard case .bool(let flag) = value else { throw mismatch("true or false") }
        return flag
    }

    /// An integer literal within `range`. 1.0 and 1e3 are rejected: Go's decoder rejects them for integer
    /// fields too, and accepting them would hide typos.
    func int(_ range: ClosedRange<Int>) throws -> Int {
        let expected = range.upperBound == Int.max
            ? "an integer >= \(range.lowerBound)" : "an integer \(range.lowerBound)-\(range.upperBound)"
        guard let text = numberText, let number = Int(text), range.contains(number) else {
            throw mismatch(expected)
        }
        return number
    }

    /// Any finite number >= `minimum` (used for durations in seconds).
    func double(atLeast minimum: Double) throws -> Double {
        guard let text = numberText, let number = Double(text), number.isFinite, number >= minimum else {
            throw mismatch("a number >= \(minimum == minimum.rounded() ? String(Int(minimum)) : String(minimum))")
        }
        return number
    }

    /// An array of strings.
    func strings() throws -> [String] {
        guard case .array = value else { throw mismatch("an array of strings") }
        return try array().map { try $0.string() }
    }
}

/// Reads the members of one object and remembers which were consumed: whatever is left at `finish()` is
/// an error naming the key, because an ignored setting is a setting the operator believes is in force.
struct ObjectReader {
    private struct Entry {
        var key: String  // as written, for messages
        var name: String  // what lookups match
        var value: JSONValue
    }

    let node: ConfigNode
    private let entries: [Entry]
    private var used = Set<String>()

    /// `protoNames`: v5 objects are protobuf messages read with protojson, which accepts both the proto
    /// field name (`certificate_file`) and its lowerCamel JSON name (`certificateFile`). Keys are matched
    /// by the JSON name; writing both spellings of one field is an error.
    init(node: ConfigNode, object: JSONObject, protoNames: Bool) throws {
        self.node = node
        var entries: [Entry] = []
        var names = Set<String>()
        for member in object.members {
            let name = protoNames ? Self.lowerCamel(member.key) : member.key
            guard names.insert(name).inserted else {
                throw node.path.appending(key: member.key).node(member.value, node.file)
                    .error("\(JSONC.quote(member.key)) repeats another spelling of the same field")
            }
            entries.append(Entry(key: member.key, name: name, value: member.value))
        }
        self.entries = entries
    }

    var isEmpty: Bool { entries.isEmpty }

    /// The members not taken (yet), as written.
    var untakenKeys: [String] { entries.filter { !used.contains($0.name) }.map(\.key) }

    /// The member, or nil if it is absent or null (Go's decoder treats null as absent too).
    mutating func take(_ name: String) -> ConfigNode? {
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        used.insert(name)
        if case .null = entry.value { return nil }
        return node.child(entry.value, at: node.path.appending(key: entry.key))
    }

    /// Every member in document order (null ones left out), all marked consumed: for maps whose keys are
    /// data (policy levels, HTTP headers). One pass, so a hostile object with many keys stays linear.
    mutating func takeAll() -> [(key: String, node: ConfigNode)] {
        var members: [(key: String, node: ConfigNode)] = []
        for entry in entries {
            used.insert(entry.name)
            if case .null = entry.value { continue }
            members.append((entry.key, node.child(entry.value, at: node.path.appending(key: entry.key))))
        }
        return members
    }

    mutating func require(_ name: String) throws -> ConfigNode {
        guard let member = take(name) else { throw missing(name) }
        return member
    }

    /// The error for a required member that is absent.
    func missing(_ name: String) -> ConfigError {
        node.error("missing required key \(JSONC.quote(name))")
    }

    /// Marks keys as consumed without reading them: for client-only hints and no-ops. Every call site
    /// says why the key may be ignored.
    mutating func ignore(_ names: String...) {
        for name in names { used.insert(name) }
    }

    /// For switches vmessd does not implement: absent or false is fine, true is an error naming the key.
    mutating func requireOff(_ name: String) throws {
        if let flag = take(name), try flag.bool() {
            throw flag.error("\(JSONC.quote(name)): true is not supported by vmessd yet")
        }
    }

    /// For objects vmessd accepts only empty (e.g. `sockopt`): every key present is reported.
    func requireEmpty() throws {
        try finish(unsupported: Set(entries.map(\.name)))
    }

    /// Fails if a member was not consumed, naming each such member (in document order). Keys in
    /// `unsupported` are V2Ray settings vmessd knows but does not implement; anything else is reported
    /// as unknown.
    func finish(unsupported: Set<String> = []) throws {
        var errors = ConfigErrorCollector()
        for entry in entries where !used.contains(entry.name) {
            let member = node.path.appending(key: entry.key).node(entry.value, node.file)
            _ = try errors.attempt {
                if unsupported.contains(entry.name) {
                    throw member.error("\(JSONC.quote(entry.key)) is not supported by vmessd yet")
                }
                throw member.error("unknown key \(JSONC.quote(entry.key))")
            }
        }
        try errors.finish()
    }

    /// `certificate_file` → `certificateFile` (protoc's JSON-name rule).
    static func lowerCamel(_ key: String) -> String {
        var out = ""
        var upperNext = false
        for ch in key {
            if ch == "_" {
                upperNext = true
            } else if upperNext {
                out += ch.uppercased()
                upperNext = false
            } else {
                out.append(ch)
            }
        }
        return out
    }
}

extension JSONPath {
    func node(_ value: JSONValue, _ file: String) -> ConfigNode {
        ConfigNode(value: value, path: self, file: file)
    }
}
