// The compiled domain condition of one rule, over the name's lower-case UTF-8 bytes.
//
// - `full:` and `domain:` are hash lookups of the name's label suffixes: walking the name from its
//   end, a hash of the suffix read so far is extended one byte at a time, and at each label boundary
//   ("com", "example.com", "a.example.com") it is looked up (and the bytes compared on a hit). One
//   pass over the name, one lookup per label, however many patterns (a geosite:cn rule holds
//   thousands) and without building a string per suffix.
// - keywords (plain entries) are a list: geodata tags hold few of them (geosite:cn has one), and short
//   needles scanned over a name of at most 253 bytes stay well under a microsecond.
// - regexes run as one linear-time program (DomainRegex) through a lazily built DFA (DomainRegexDFA).

struct DomainMatcher {
    /// Patterns by the hash of their reversed bytes (see `suffixHash`); values index `patterns`.
    private let full: [UInt64: [Int32]]
    private let roots: [UInt64: [Int32]]
    private let patterns: [[UInt8]]
    private let substrings: [[UInt8]]
    private let regex: DomainRegexDFA?

    init(_ set: DomainSet) throws {
        var patterns: [[UInt8]] = []
        func table(_ values: [String]) -> [UInt64: [Int32]] {
            var table: [UInt64: [Int32]] = [:]
            table.reserveCapacity(values.count)
            for value in values {
                let bytes = Array(value.utf8)
                var hash = Self.hashSeed
                for byte in bytes.reversed() { hash = Self.extend(hash, byte) }
                table[hash, default: []].append(Int32(patterns.count))
                patterns.append(bytes)
            }
            return table
        }
        full = table(set.full)
        roots = table(set.rootDomains)
        self.patterns = patterns
        substrings = set.substrings.map { Array($0.utf8) }
        regex = set.regexes.isEmpty ? nil : DomainRegexDFA(try DomainRegex(set.regexes))
    }

    /// `domain`: normalised bytes (`Router.normalizedDomain`).
    func matches(_ domain: [UInt8]) -> Bool {
        if !roots.isEmpty || !full.isEmpty {
            var hash = Self.hashSeed
            var i = domain.count
            while i > 0 {
                i -= 1
                hash = Self.extend(hash, domain[i])
                if i == 0 {
                    if hit(full, hash, domain, from: 0) || hit(roots, hash, domain, from: 0) { return true }
                } else if domain[i - 1] == UInt8(ascii: "."), hit(roots, hash, domain, from: i) {
                    return true
                }
            }
        }
        for needle in substrings where Self.contains(domain, needle) { return true }
        if let regex, regex.matches(domain) { return true }
        return false
    }

    private func hit(_ table: [UInt64: [Int32]], _ hash: UInt64, _ domain: [UInt8], from start: Int) -> Bool {
        guard let candidates = table[hash] else { return false }
        for index in candidates {
            let pattern = patterns[Int(index)]
            if pattern.count == domain.count - start && pattern.elementsEqual(domain[start...]) { return true }
        }
        return false
    }

    // FNV-1a over the bytes read from the end of the name.
    private static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) private static func extend(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
        (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
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
