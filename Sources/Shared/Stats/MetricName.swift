// Entries of the metrics counter table (CounterTable .metrics): one per inbound, outbound and user,
// each with four values. Unlike the gRPC API's counters (StatName) these always exist, whatever the
// config's `stats` and `policy` say, and the API's `reset` never touches them: Prometheus counters
// must only go up.
//
// Names are bounded like the API's: tags and emails come from the config (the parser bounds them)
// and are cut to the entry's 64 bytes for display; the table keys on a hash of the whole name.

public enum MetricName {
    public enum Kind: String, CaseIterable, Sendable { case inbound, outbound, user }

    /// The four values of an entry.
    public enum Value: Int, Sendable {
        case bytesUp = 0, bytesDown = 1, accepted = 2, closed = 3
    }

    static let separator = ">>>"

    public static func entry(_ kind: Kind, _ name: String) -> String { kind.rawValue + separator + name }

    /// The kind and the name of an entry, or nil for a name this module did not make.
    public static func parse(_ entry: String) -> (kind: Kind, name: String)? {
        guard let range = entry.range(of: separator), let kind = Kind(rawValue: String(entry[..<range.lowerBound])) else {
            return nil
        }
        return (kind, String(entry[range.upperBound...]))
    }
}
