/// Why one question got no answer from one server (the resolver then moves on to the next server).
enum DNSLookupError: Error, Equatable {
    case timeout
    case unreachable(String)
    /// More distinct questions in flight than `DNSResolver.maximumInFlight`.
    case busy
    case invalidName
    /// A TCP answer that was itself truncated, or cut short.
    case malformed
}
