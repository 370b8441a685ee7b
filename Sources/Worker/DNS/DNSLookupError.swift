/// Why one question got no answer from one server (the resolver then moves on to the next server).
enum DNSLookupError: Error, Equatable, CustomStringConvertible {
    case timeout
    case unreachable(String)
    /// More distinct questions in flight than `DNSResolver.maximumInFlight`.
    case busy
    case invalidName
    /// A TCP answer that was itself truncated, or cut short.
    case malformed

    var description: String {
        switch self {
        case .timeout: "no answer in time"
        case .unreachable(let reason): "unreachable: \(reason)"
        case .busy: "too many questions in flight"
        case .invalidName: "not a valid name"
        case .malformed: "no whole, matching answer"
        }
    }
}
