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

    public init(file: String, path: String, line: Int? = nil, column: Int? = nil, reason: String) {
        self.file = file
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason
    }

    /// `config.json: inbounds[0].port: expected an integer 1-65535, got boolean`
    /// `config.json:12:5: syntax error: expected ',' or '}'`
    public var description: String {
        if let line, let column {
            return "\(file):\(line):\(column): syntax error: \(reason)"
        }
        return path.isEmpty ? "\(file): \(reason)" : "\(file): \(path): \(reason)"
    }
}
