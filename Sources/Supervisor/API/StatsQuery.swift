// StatsService's reads over the shared named-counter table (CounterTable .stats): one counter by
// name, or every counter matching V2Ray's patterns, optionally reset in the same atomic step.

import Shared

struct StatsQuery {
    struct Stat: Equatable, Sendable {
        var name: String
        var value: Int64
    }

    enum QueryError: Error, Equatable { case badPattern(String) }

    let table: CounterTable

    /// The counter called `name`, nil when nothing was ever counted under it (the reference answers
    /// such a name with an error, as no counter was registered for it).
    func get(_ name: String, reset: Bool) -> Stat? {
        guard let index = table.existingIndex(of: name) else { return nil }
        let value = reset ? table.takeValue0(index) : table.entry(at: index).value0
        return Stat(name: name, value: Int64(bitPattern: value))
    }

    /// V2Ray 4: `pattern` is a substring ("" = every counter). V2Ray 5: `patterns` (any may match),
    /// as regular expressions when `regexp`. Sorted by name, so panels see a stable order.
    func query(pattern: String, patterns: [String], regexp: Bool, reset: Bool) throws -> [Stat] {
        let all = patterns.isEmpty ? [pattern] : patterns
        let matches: (String) -> Bool
        if regexp {
            let compiled = try all.map { p -> Regex<AnyRegexOutput> in
                do { return try Regex(p) } catch { throw QueryError.badPattern(p) }
            }
            matches = { name in compiled.contains { name.contains($0) } }
        } else {
            matches = { name in all.contains { $0.isEmpty || name.contains($0) } }
        }
        var out: [Stat] = []
        for entry in table.entries() where matches(entry.name) {
            let value = reset ? table.takeValue0(entry.index) : entry.value0
            out.append(Stat(name: entry.name, value: Int64(bitPattern: value)))
        }
        return out.sorted { $0.name < $1.name }
    }
}
