import Shared

/// Per-worker counters, event-loop confined (CounterPublisher copies them to shared memory).
final class WorkerCounters {
    var accepted = 0
    var active = 0
    var rejected: [String: Int] = [:]
    var bytesUp = 0
    var bytesDown = 0
    var perUserUp: [String: Int] = [:]
    var perUserDown: [String: Int] = [:]
    /// Bounds that were hit and what was dropped for them (datagrams too large or for a slow
    /// client, connections over a limit, ...), by a stable name; see deploy/RUNBOOK.md "Bounds".
    var dropped: [String: Int] = [:]
    /// The gRPC API's named counters (only those the config's stats switches ask for) and the
    /// metrics' per-tag and per-user counters.
    let stats = StatRegistry()
    /// Clock skew of AEAD handshakes, by SkewHistogram.Outcome (accepted, rejected).
    var skew = [SkewCounts(), SkewCounts()]
    /// The event loop's lateness (LagProbe).
    var lag = WorkerLag()

    func drop(_ reason: DropReason) { dropped[reason.rawValue, default: 0] &+= 1 }
}

/// Why something a peer sent or caused was dropped rather than carried: one name per bound.
enum DropReason: String {
    case udpSlowClient = "udp_slow_client"
    case udpTooLarge = "udp_too_large"
    case udpQueueFull = "udp_queue_full"
    /// A datagram toward a client while its user's downlink rate (userLimits) holds the target.
    case udpOverRate = "udp_over_rate"
    case muxSessionLimit = "mux_session_limit"
    case muxConnectLimit = "mux_connect_limit"
    case muxUnknownSession = "mux_unknown_session"
    case connectionLimit = "connection_limit"
    case sourceLimit = "source_limit"
    /// Built-in DNS: a question refused because `DNSResolver.maximumInFlight` were already waiting.
    case dnsBusy = "dns_busy"
    /// dns outbound: a query beyond `DNSOutboundLink.maximumPending` lookups of one client request.
    case dnsPending = "dns_pending"
    /// A connection failed because what it kept after a peer's FIN did not fit the worker's
    /// KeptBytesBudget (counted by the budget itself; most of its refusals are on target sides).
    case keptOverBudget = "kept_over_budget"
}
