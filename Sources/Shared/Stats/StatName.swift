// The names of the counters the gRPC API serves, exactly as V2Ray and Xray write them: panels and
// billing scripts parse these strings (`user>>>alice@example.com>>>traffic>>>uplink`).
//
// Which counters exist follows the reference: only with `"stats": {}`, per-user counters for users
// with an email whose level turns them on, per-inbound/outbound ones for tagged handlers when
// `policy.system` turns them on. A counter appears once something was counted in it.

public enum StatName {
    public enum Direction: String, Sendable { case uplink, downlink }

    /// Longest name the shared table holds whole (CounterTable .stats entries). The config parser
    /// refuses emails and tags that would make a longer one, rather than keeping a cut name.
    public static let maximumBytes = 208
    /// The longest email or tag: the longest name adds 32 bytes to it ("outbound>>>" "…>>>traffic>>>downlink").
    public static let maximumPartBytes = maximumBytes - 32

    public static func user(_ email: String, _ direction: Direction) -> String {
        "user>>>\(email)>>>traffic>>>\(direction.rawValue)"
    }

    public static func inbound(_ tag: String, _ direction: Direction) -> String {
        "inbound>>>\(tag)>>>traffic>>>\(direction.rawValue)"
    }

    public static func outbound(_ tag: String, _ direction: Direction) -> String {
        "outbound>>>\(tag)>>>traffic>>>\(direction.rawValue)"
    }

    /// Xray's online entry of a user (GetStatsOnline, GetAllOnlineUsers).
    public static func online(_ email: String) -> String { "user>>>\(email)>>>online" }

    /// The email in an online entry's name, nil for any other name.
    public static func onlineEmail(_ name: String) -> String? {
        guard name.hasPrefix("user>>>"), name.hasSuffix(">>>online") else { return nil }
        let email = name.dropFirst(7).dropLast(9)
        return email.isEmpty ? nil : String(email)
    }

    /// Whether every name built from `part` (an email or a tag) fits the table.
    public static func fits(_ part: String) -> Bool {
        part.utf8.count <= maximumPartBytes
    }
}

/// Which counters a config asks for (pure: the worker asks it once per inbound, user and outbound).
public struct StatSwitches: Equatable, Sendable {
    public let enabled: Bool
    public let policy: PolicyConfig

    public init(_ config: Config) {
        enabled = config.statsEnabled
        policy = config.policy
    }

    public init(enabled: Bool, policy: PolicyConfig) {
        self.enabled = enabled
        self.policy = policy
    }

    /// No counters at all (a config without `"stats"`).
    public static let off = StatSwitches(enabled: false, policy: PolicyConfig())

    public func user(email: String?, level: Int, _ direction: StatName.Direction) -> String? {
        guard enabled, let email, !email.isEmpty else { return nil }
        let l = policy.level(level)
        let on = direction == .uplink ? l.statsUserUplink : l.statsUserDownlink
        return on ? StatName.user(email, direction) : nil
    }

    /// Xray's online users: the addresses of this user's open connections are kept (UserLimitTable).
    public func online(email: String?, level: Int) -> Bool {
        enabled && !(email ?? "").isEmpty && policy.level(level).statsUserOnline
    }

    /// Levels whose users' addresses are kept (empty without `"stats"`).
    public var onlineLevels: Set<Int> {
        enabled ? Set(policy.levels.filter { $0.value.statsUserOnline }.keys) : []
    }

    public func inbound(tag: String?, _ direction: StatName.Direction) -> String? {
        guard enabled, let tag, !tag.isEmpty else { return nil }
        let on = direction == .uplink ? policy.system.statsInboundUplink : policy.system.statsInboundDownlink
        return on ? StatName.inbound(tag, direction) : nil
    }

    public func outbound(tag: String?, _ direction: StatName.Direction) -> String? {
        guard enabled, let tag, !tag.isEmpty else { return nil }
        let on = direction == .uplink ? policy.system.statsOutboundUplink : policy.system.statsOutboundDownlink
        return on ? StatName.outbound(tag, direction) : nil
    }
}
