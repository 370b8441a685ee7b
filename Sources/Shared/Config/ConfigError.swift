// The one error type of the config layer. Every failure names the file, the JSON path of the offending
// value and a reason, so `vmessd test -c FILE` can print a line an operator can act on without reading
// the parser. Syntax errors (the text is not JSON) carry a 1-based line and column instead of a path.

public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The config file as it was named to the parser ("<embedded demo>" for the demo config).
    public var file: String
    /// JSON path like `inbounds[0].settings.clients[1].id`; "" for the root or for syntax errors.
    public var path: String
    /// Position of the offending character for syntax errors (1-based; columns count Unicode scalars).
    public var line: Int?
    public var column: Int?
    public var reason: String
    /// The errors found after this one in the same run (`vmessd test` reports every error it can
    /// find, not only the first).
    public var further: [ConfigError] = []

    public init(file: String, path: String, line: Int? = nil, column: Int? = nil, reason: String) {
        self.file = file
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason
    }

    /// This error and the further ones, each on its own.
    public var all: [ConfigError] {
        var first = self
        first.further = []
        return [first] + further.flatMap(\.all)
    }

    /// One line per error:
    /// `config.json: inbounds[0].port: expected an integer 1-65535, got boolean`
    /// `config.json:12:5: syntax error: expected ',' or '}'`
    public var description: String {
        all.map(\.oneLine).joined(separator: "\n")
    }

    private var oneLine: String {
        if let line, let column {
            return "\(file):\(line):\(column): syntax error: \(reason)"
        }
        return path.isEmpty ? "\(file): \(reason)" : "\(file): \(path): \(reason)"
    }
}

/// Gathers the errors of independent parts of a config (sections, list items), so one run reports
/// them all. A part that fails yields nil, and what depends on it is not checked (its errors would
/// only echo the first).
struct ConfigErrorCollector {
    private(set) var errors: [ConfigError] = []

    var isEmpty: Bool { errors.isEmpty }

    mutating func attempt<T>(_ body: () throws -> T) throws -> T? {
        do {
            return try body()
        } catch let error as ConfigError {
            errors += error.all
            return nil
        }
    }

    /// Throws the errors gathered (the first, with the others as `further`), if any.
    func finish() throws {
        guard var first = errors.first else { return }
        first.further = Array(errors.dropFirst())
        throw first
    }
}
