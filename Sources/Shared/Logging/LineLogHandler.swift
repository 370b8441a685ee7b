// The swift-log handler behind LogSetup: formats one line per message and writes it with a single
// write(2), so lines from several threads (or processes sharing stderr) never interleave mid-line.

import Glibc
import Logging

public struct LineLogHandler: LogHandler {
    public enum Style: Sendable {
        /// `2026-11-21T23:59:59Z notice vmessd: message key=value`
        case plain
        /// `<5>message key=value` (journald takes the time and the process name itself)
        case journal
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The process name shown in plain lines ("vmessd", "vmessd-worker"), whatever a Logger's label.
    public let label: String
    public let style: Style

    public init(label: String, style: Style) {
        self.label = label
        self.style = style
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        let text = format(level: event.level, message: event.message.description, metadata: merged, time: time(nil))
        var bytes = Array(text.utf8)
        bytes.append(UInt8(ascii: "\n"))
        // Logging must never fail the caller; a lost line on a broken stderr is the lesser evil.
        try? Posix.writeAll(fd: STDERR_FILENO, bytes)
    }

    /// The line without its newline. Separate from `log` so the format can be tested.
    public func format(level: Logger.Level, message: String, metadata: Logger.Metadata, time: time_t) -> String {
        var line: String
        switch style {
        case .journal:
            line = "<\(Self.syslogPriority(level))>"
        case .plain:
            line = "\(Self.timestamp(time)) \(level.rawValue) \(label): "
        }
        line += Self.singleLine(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=\(Self.quotedIfNeeded(Self.singleLine("\(metadata[key]!)")))"
        }
        return line
    }

    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timestamp(_ seconds: time_t) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A newline inside a message would split one event over two journal entries. (Scalars, not
    /// Characters: "\r\n" is one Character that equals neither "\r" nor "\n".)
    static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// Values with spaces, quotes or '=' are quoted so `key=value` pairs stay machine-splittable.
    static func quotedIfNeeded(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return value }
        var out = "\""
        for c in value {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }
}
