// The compiled domain condition of one rule.
//
// - `full:` is one hash lookup; `domain:` is one hash lookup per label suffix of the queried name
//   ("a.b.example.com" looks up itself, "b.example.com", "example.com", "com"), so the cost depends on
//   the queried name's label count, not on the number of patterns (a geosite:cn rule holds thousands).
// - keywords (plain entries) are a list: geodata tags hold few of them (geosite:cn has one), and a
//   list of short needles scanned over a name of at most 253 bytes stays well under a microsecond.
// - regexes run as one linear-time program (DomainRegex).
// Both sides are lower-cased: DNS names compare case-insensitively.

struct DomainMatcher {
    private let full: Set<String>
    private let roots: Set<String>
    private let substrings: [[UInt8]]
    private let regex: DomainRegex?

    init(_ set: DomainSet) throws {
        full = Set(set.full)
        roots = Set(set.rootDomains)
        substrings = set.substrings.map { Array($0.utf8) }
        regex = set.regexes.isEmpty ? nil : try DomainRegex(set.regexes)
    }

    /// `domain` must be normalised (`Router.normalizedDomain`).
    func matches(_ domain: String) -> Bool {
        if full.contains(domain) { return true }
        if !roots.isEmpty {
            if roots.contains(domain) { return true }
            var rest = Substring(domain)
            while let dot = rest.firstIndex(of: ".") {
                rest = rest[rest.index(after: dot)...]
                if roots.contains(String(rest)) { return true }
            }
        }
        if !substrings.isEmpty || regex != nil {
            let bytes = Array(domain.utf8)
            for needle in substrings where Self.contains(bytes, needle) { return true }
            if let regex, regex.matches(bytes) { return true }
        }
        return false
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first else { return true }
        guard haystack.count >= needle.count else { return false }
        var start = 0
        let last = haystack.count - needle.count
        while start <= last {
            if haystack[start] == first {
                var i = 1
                while i < needle.count && haystack[start + i] == needle[i] { i += 1 }
                if i == needle.count { return true }
            }
            start += 1
        }
        return false
    }
}
