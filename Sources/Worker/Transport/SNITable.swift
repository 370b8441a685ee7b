/// Server-name matching for SNI (RFC 6125 §6.4: case-insensitive, `*` only as the whole leftmost
/// label, matching exactly one label). The first certificate with a matching name wins.
struct SNITable: Sendable {
    let names: [[String]]

    init(names: [[String]]) {
        self.names = names.map { $0.map { $0.lowercased() } }
    }

    func match(_ serverName: String) -> Int? {
        let host = serverName.lowercased().trimmingSuffixDot()
        return names.firstIndex { $0.contains { Self.matches(pattern: $0, host) } }
    }

    static func matches(pattern: String, _ host: String) -> Bool {
        if pattern == host { return true }
        guard pattern.hasPrefix("*.") else { return false }
        let suffix = pattern.dropFirst(1)  // ".example.com"
        guard host.hasSuffix(suffix) else { return false }
        let label = host.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".")
    }
}

private extension String {
    func trimmingSuffixDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}
