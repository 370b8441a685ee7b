// `"vmessd": {"metrics": {"listen": "127.0.0.1:9550", "userLabels": false}}`: the Prometheus
// endpoint the supervisor serves (Sources/Supervisor/Metrics). Off without the object; on with it,
// on loopback port 9550 unless `listen` says otherwise. The endpoint has no authentication: a
// non-loopback address is allowed (a scraper on another host) but exposes traffic figures, and user
// emails too with `userLabels` (deploy/RUNBOOK.md "Metrics").

public struct MetricsSettings: Codable, Equatable, Sendable {
    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 9550

    /// An IP literal (canonical spelling), bound by the supervisor.
    public var host = Self.defaultHost
    public var port = Self.defaultPort
    /// Per-user series (traffic and connections labelled with the user's email): one series set per
    /// user, so off by default (cardinality: a server with 10,000 users would export 40,000 series).
    public var userLabels = false

    public init() {}

    public var isLoopback: Bool { host.hasPrefix("127.") || host == "::1" }

    /// "127.0.0.1:9550", "[::1]:9550".
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
