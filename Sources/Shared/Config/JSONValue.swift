// The value tree the JSONC reader produces and the config parser walks.
//
// Two choices differ from Foundation's JSONSerialization, both on purpose:
// - objects keep their members in document order, so "the first unknown key" in an error message is the
//   first one in the file, not a hash-order accident;
// - numbers keep their literal text, so an integer field can reject 1.5 or 1e3 and report 99999999999999999999
//   as written instead of as a rounded Double.

public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The literal as written (already checked against the JSON number grammar).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The word used in "expected …, got X" messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON object with member order preserved. Keys are unique: the reader rejects duplicates, because
/// Go's encoding/json silently keeps the last one and a config with two `"port"`s is a mistake.
public struct JSONObject: Equatable, Sendable {
    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSONValue
    }

    public var members: [Member]

    public init(_ members: [Member] = []) { self.members = members }

    public var isEmpty: Bool { members.isEmpty }

    /// Linear lookup: config objects have a handful of keys, so a hash index would cost more than it saves.
    public subscript(key: String) -> JSONValue? {
        members.first(where: { $0.key == key })?.value
    }
}
