import Shared

/// A worker's cache of where names live in one shared counter table: each name is looked up (and
/// inserted) in shared memory once. A full table's answer, nil, is cached too, so a name that found
/// no room is not retried every second. Event-loop confined; the counter publisher and the user
/// limiter share the users table's rows.
final class CounterRows {
    let table: CounterTable
    private var rows: [String: Int?] = [:]

    init(_ table: CounterTable) { self.table = table }

    func row(_ name: String) -> Int? {
        if let cached = rows[name] { return cached }
        let found = table.index(of: name)
        rows.updateValue(found, forKey: name)
        return found
    }
}
