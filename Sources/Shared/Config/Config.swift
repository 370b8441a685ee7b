// The validated configuration model. The parser (ConfigParser) turns a V2Ray v4 or v5 JSON file into
// this; the supervisor validates once and ships the encoded model to every worker, so all workers of a
// generation run exactly the same config. Everything here is plain data (Codable, Equatable).

/// A whole configuration, format-independent.
public struct Config: Codable, Equatable, Sendable {
    /// Path of the file it came from ("<embedded demo>" for the demo config). Used in messages.
    public var sourceFile: String
    public var format: ConfigFormat
    public var log: LogConfig
    public var inbounds: [InboundConfig]
    public var outbounds: [OutboundConfig]
    public var policy: PolicyConfig
    /// v4 `routing` / v5 `router`, geodata already expanded; nil: everything goes to outbounds[0].
    public var routing: RoutingConfig?
    /// v4/v5 `dns` (Sources/Shared/DNS/DNSConfig.swift); nil: the system resolver, as before.
    public var dns: DNSConfig?
    /// Top-level `"vmessd"` object: supervisor settings; command-line flags win over these.
    public var daemon: DaemonSettings
    /// v4 `api` (Xray's `api.listen` included): the gRPC API the supervisor serves; nil: none.
    public var api: APIConfig?
    /// `"stats": {}` present: the counters the policy switches ask for are kept (StatNames).
    public var statsEnabled = false

    public init(sourceFile: String, format: ConfigFormat, log: LogConfig = .init(), inbounds: [InboundConfig],
                outbounds: [OutboundConfig], policy: PolicyConfig = .init(), daemon: DaemonSettings = .init()) {
        self.sourceFile = sourceFile
        self.format = format
        self.log = log
        self.inbounds = inbounds
        self.outbounds = outbounds
        self.policy = policy
        self.daemon = daemon
    }
}

public enum ConfigFormat: String, Codable, Sendable { case v4, v5 }

public enum LogLevel: String, Codable, Sendable, Comparable {
    case debug, info, warning, error, none
    private var rank: Int {
        switch self { case .debug: 0; case .info: 1; case .warning: 2; case .error: 3; case .none: 4 }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

public struct LogConfig: Codable, Equatable, Sendable {
    /// v4 `loglevel` / v5 `error.level`. V2Ray's default is warning.
    public var level: LogLevel = .warning
    /// v4 `error` path / v5 `error.path`; nil = stderr.
    public var errorPath: String?
    /// Access log file when `accessEnabled`; nil then means stdout. v4 `access`: absent or "none" = off,
    /// "" = stdout, else a path; v5 `access.type`: "None" = off, "Console" = stdout, "File" with `access.path`.
    public var accessPath: String?
    /// Whether to write an access log at all (off unless the config asks).
    public var accessEnabled: Bool = false
    public init() {}
}

/// One inbound. `jsonPath` ("inbounds[0]") lets runtime errors name it the way config errors do.
public struct InboundConfig: Codable, Equatable, Sendable {
    public var tag: String?
    public var listen: String = "0.0.0.0"
    public var port: Int
    public var settings: InboundSettings
    public var stream: StreamSettings = .init()
    /// nil: sniffing absent or disabled.
    public var sniffing: SniffingConfig?
    /// v4 `allocate` with strategy "random": only `concurrency` of the inbound's ports listen at a
    /// time, chosen anew every `refresh` minutes (PortAllocation). nil: every port, always.
    public var allocation: PortAllocation?
    /// `listen` as a Unix domain socket (then `listen` holds its text without the mode and `port` is 0).
    public var unixSocket: UnixListenAddress?
    public var jsonPath: String
    public init(tag: String? = nil, listen: String = "0.0.0.0", port: Int, settings: InboundSettings,
                stream: StreamSettings = .init(), sniffing: SniffingConfig? = nil, jsonPath: String) {
        self.tag = tag
        self.listen = listen
        self.port = port
        self.settings = settings
        self.stream = stream
        self.sniffing = sniffing
        self.jsonPath = jsonPath
    }
}

public enum InboundSettings: Codable, Equatable, Sendable {
    case vmess(VMessInboundSettings)
    /// Client-side inbounds (local proxies feeding the first outbound); models in Config+Client.swift.
    case socks(SocksInboundSettings)
    case http(HTTPInboundSettings)
    case dokodemo(DokodemoSettings)
}

public struct VMessInboundSettings: Codable, Equatable, Sendable {
    public var users: [VMessUser]
    /// v4 `default.level` / `default.alterId` (used by v2ray for users added by detour/switch-account).
    public var defaultLevel: Int = 0
    public var defaultAlterId: Int = 0
    /// Reject none/legacy/zero securities (v2fly `SecureEncryptionOnly`).
    public var disableInsecureEncryption: Bool = false
    /// v4 `detour.to`: answer each handshake with a switch-account command to that inbound
    /// (ConfigParser+Detour fills `detour` in from it).
    public var detourTo: String?
    public var detour: DetourTarget?
    public init(users: [VMessUser]) { self.users = users }
}

/// Where a `detour` sends clients: the target inbound's tag, its ports and the `default` level and
/// alterId its (derived) users have.
public struct DetourTarget: Codable, Equatable, Sendable {
    public var tag: String
    public var ports: [Int]
    public var alterId: Int
    public var level: Int
    /// Unix time the ports stop being valid (random allocation: the next refresh); nil: never.
    public var validUntil: Int64?
    public init(tag: String, ports: [Int], alterId: Int, level: Int) {
        self.tag = tag
        self.ports = ports
        self.alterId = alterId
        self.level = level
    }
}

public struct VMessUser: Codable, Equatable, Sendable {
    /// Canonical lower-case 8-4-4-4-12 text.
    public var id: String
    public var alterId: Int = 0
    /// Client-side hint in v4 configs; servers accept whatever security the client picks.
    public var security: String?
    public var level: Int = 0
    public var email: String?
    public init(id: String, alterId: Int = 0, security: String? = nil, level: Int = 0, email: String? = nil) {
        self.id = id
        self.alterId = alterId
        self.security = security
        self.level = level
        self.email = email
    }
}

public struct OutboundConfig: Codable, Equatable, Sendable {
    public var tag: String?
    public var settings: OutboundSettings
    /// `sendThrough`: the local address connections and datagrams leave from (an IP literal).
    public var sendThrough: String?
    /// The outbound's `streamSettings.sockopt` / `socketSettings`, for every socket it dials.
    public var sockopt = SocketOptions()
    /// `proxySettings.tag`: the outbound whose connections carry this one's (a chain); nil: direct.
    public var proxyTag: String?
    public var jsonPath: String
    public init(tag: String? = nil, settings: OutboundSettings, jsonPath: String) {
        self.tag = tag
        self.settings = settings
        self.jsonPath = jsonPath
    }
}

public enum OutboundSettings: Codable, Equatable, Sendable {
    case freedom(FreedomSettings)
    case blackhole(BlackholeSettings)
    /// The VMess client; model in Config+Client.swift.
    case vmess(VMessOutboundSettings)
    /// Answers DNS queries with the built-in resolver; model in Shared/DNS/DNSConfig.swift.
    case dns(DNSOutboundSettings)
}

public struct FreedomSettings: Codable, Equatable, Sendable {
    public enum DomainStrategy: String, Codable, Sendable { case asIs = "AsIs", useIP = "UseIP", useIPv4 = "UseIPv4", useIPv6 = "UseIPv6" }
    public var domainStrategy: DomainStrategy = .asIs
    /// v4 `redirect` ("host:port"): send everything there instead.
    public var redirectHost: String?
    public var redirectPort: Int?
    public init() {}
}

public struct BlackholeSettings: Codable, Equatable, Sendable {
    /// v4 `response.type`: "none" (default) or "http" (send a 403 then close).
    public var httpResponse: Bool = false
    public init() {}
}

/// `policy.levels`. Times in seconds, bufferSize in KiB (V2Ray's units).
public struct PolicyConfig: Codable, Equatable, Sendable {
    public var levels: [Int: LevelPolicy] = [:]
    public var system = SystemPolicy()
    public init() {}
    /// The effective policy of a user level: configured values over V2Ray's code defaults.
    public func level(_ n: Int) -> LevelPolicy { levels[n] ?? LevelPolicy() }
}

public struct LevelPolicy: Codable, Equatable, Sendable {
    /// V2Ray's code defaults (vmess-protocol.md §11.3): handshake 60 s, connIdle 300 s, uplinkOnly 1 s,
    /// downlinkOnly 1 s. bufferSize: per-connection buffering bound in KiB (V2Ray: 512 on 64-bit Linux).
    public var handshake: Int = 60
    public var connIdle: Int = 300
    public var uplinkOnly: Int = 1
    public var downlinkOnly: Int = 1
    public var bufferSize: Int = 512
    /// Per-user traffic counters (`user>>>EMAIL>>>traffic>>>uplink|downlink`) for users of this level
    /// that have an email; kept only with `"stats": {}`, as in the reference.
    public var statsUserUplink = false
    public var statsUserDownlink = false
    /// Xray: the user's open connections and their addresses (`user>>>EMAIL>>>online`).
    public var statsUserOnline = false
    public init() {}
}

/// `policy.system`: per-inbound and per-outbound traffic counters (`inbound>>>TAG>>>traffic>>>uplink`,
/// ...), for tagged inbounds and outbounds, kept only with `"stats": {}`.
public struct SystemPolicy: Codable, Equatable, Sendable {
    public var statsInboundUplink = false
    public var statsInboundDownlink = false
    public var statsOutboundUplink = false
    public var statsOutboundDownlink = false
    public init() {}
}

public struct StreamSettings: Codable, Equatable, Sendable {
    /// Raw values are the share-link `net` names.
    public enum Network: String, Codable, Sendable { case tcp, ws, httpupgrade, grpc, h2, kcp }
    public enum Security: String, Codable, Sendable { case none, tls }
    public var network: Network = .tcp
    public var security: Security = .none
    public var ws: WebSocketSettings?
    public var httpUpgrade: HTTPUpgradeSettings?
    public var grpc: GRPCSettings?
    /// The h2 transport (`httpSettings`).
    public var http: HTTPSettings?
    /// mKCP (UDP): the inbound listens on a UDP socket instead of a TCP one.
    public var kcp: KCPSettings?
    /// tcp only: the HTTP disguise (`tcpSettings.header.type: "http"`); nil for plain tcp.
    public var tcpHeader: TCPHTTPHeaderSettings?
    public var tls: TLSSettings?
    /// v4 `sockopt` / v5 `socketSettings`.
    public var sockopt = SocketOptions()
    /// Inbounds: every connection starts with a PROXY protocol header (v1 or v2) naming the client
    /// (v4 `tcpSettings`/`wsSettings`/`httpupgradeSettings`/`sockopt`, v5 tcp `transportSettings`
    /// and `socketSettings`: any one of them turns it on, as in V2Ray and Xray).
    public var acceptProxyProtocol = false
    public init() {}
}

/// Options set on a TCP socket (and the ones that apply, on UDP sockets): on each accepted connection
/// of an inbound, on each connection an outbound dials. nil: the system's default, untouched.
public struct SocketOptions: Codable, Equatable, Sendable {
    /// SO_MARK (policy routing; needs CAP_NET_ADMIN).
    public var mark: UInt32?
    /// TCP Fast Open: on an inbound the listening socket's queue length (TCP_FASTOPEN), on an outbound
    /// TCP_FASTOPEN_CONNECT. false turns it off where it was on.
    public var tcpFastOpen: Bool?
    public var tcpFastOpenQueueLength: Int?
    /// Seconds before the first keep-alive probe, and between probes (both turn SO_KEEPALIVE on).
    public var tcpKeepAliveIdle: Int?
    public var tcpKeepAliveInterval: Int?
    public var tcpNoDelay: Bool?
    /// TCP_CONGESTION ("bbr", "cubic", ...: a module the kernel has).
    public var tcpCongestion: String?
    /// TCP_USER_TIMEOUT in milliseconds.
    public var tcpUserTimeout: Int?
    /// SO_BINDTODEVICE (Xray `interface`, V2Ray v5 `bindToDevice`).
    public var interface: String?
    public init() {}
    public var isEmpty: Bool { self == SocketOptions() }
}

public struct WebSocketSettings: Codable, Equatable, Sendable {
    public var path: String = "/"
    public var host: String?
    public var headers: [String: String] = [:]
    public var maxEarlyData: Int = 0
    public var earlyDataHeaderName: String?
    public init() {}
}

public struct HTTPUpgradeSettings: Codable, Equatable, Sendable {
    public var path: String = "/"
    public var host: String?
    public var headers: [String: String] = [:]
    /// v2fly early data (vmess-protocol.md §12.2): with both set, a client puts its first write, padded
    /// base64url, into this header, and a server takes up to `maxEarlyData` bytes from it. Xray's
    /// pipelining (payload right behind the request head) needs no setting on the server.
    public var maxEarlyData: Int = 0
    public var earlyDataHeaderName: String?
    public init() {}
}

/// The gRPC ("gun") transport: one HTTP/2 stream per connection, POST `/<serviceName>/Tun`
/// (or `/TunMulti`), the bytes in gRPC-framed protobuf `Hunk`s (Shared/Transport/GunHunkDecoder.swift).
public struct GRPCSettings: Codable, Equatable, Sendable {
    public var serviceName: String = ""
    /// Xray's `multiMode`: the client calls TunMulti (MultiHunk messages). A server serves both methods.
    public var multiMode: Bool = false
    /// Xray's `initial_windows_size`: the HTTP/2 flow-control window we announce for each stream
    /// (and the connection); nil: vmessd's default. Bounds what one stream may have in flight to us.
    public var initialWindowSize: Int?
    /// Xray's client keep-alive (grpc-go's keepalive.ClientParameters): after `idleTimeout` seconds
    /// without a byte from the server a PING goes out (at least every 10 s; nil: never), and the
    /// connection is closed when nothing comes back within `healthCheckTimeout` (default 20 s).
    /// `permitWithoutStream`: also while the connection carries no stream.
    public var keepAlive: H2KeepAliveSettings?
    /// Xray's `user_agent`: the user-agent header of the client's requests (default grpc-go's).
    public var userAgent: String?
    public init() {}

    /// The path of the gun method: `/<serviceName>/Tun` or `/<serviceName>/TunMulti`.
    public func path(multi: Bool) -> String { "/\(serviceName)/\(multi ? "TunMulti" : "Tun")" }
}

/// Client PINGs on an HTTP/2 connection (gRPC and h2 transports), client side only: on an inbound
/// these keys have no effect, as in the reference (the same streamSettings serve both sides).
public struct H2KeepAliveSettings: Codable, Equatable, Sendable {
    /// Seconds without a byte from the server before a PING goes out.
    public var idle: Int
    /// Seconds to wait for any byte (the PING's answer) before closing the connection.
    public var timeout: Int
    /// PING also while no stream is open.
    public var withoutStream: Bool
    public init(idle: Int, timeout: Int, withoutStream: Bool) {
        self.idle = idle
        self.timeout = timeout
        self.withoutStream = withoutStream
    }
}

/// The HTTP/2 transport (`httpSettings`): one HTTP/2 stream per connection whose request and
/// response bodies carry the raw stream.
public struct HTTPSettings: Codable, Equatable, Sendable {
    /// Accepted `:authority` values (server) and the ones a client picks from at random. Empty means
    /// V2Ray's default, "www.example.com" (`effectiveHosts`).
    public var hosts: [String] = []
    /// The server accepts any path starting with this (V2Ray's prefix check).
    public var path: String = "/"
    /// The client's method (V2Ray's default PUT); the server accepts any method, as V2Ray does.
    public var method: String = "PUT"
    /// Extra request headers a client sends (name, value), in config order.
    public var headers: [HeaderField] = []
    /// `read_idle_timeout` / `health_check_timeout` (Go's http2.Transport ReadIdleTimeout and
    /// PingTimeout, default 15 s): the client's PINGs on an idle connection.
    public var keepAlive: H2KeepAliveSettings?
    public init() {}

    public struct HeaderField: Codable, Equatable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    public var effectiveHosts: [String] { hosts.isEmpty ? ["www.example.com"] : hosts }
}

public struct TLSSettings: Codable, Equatable, Sendable {
    public struct Certificate: Codable, Equatable, Sendable {
        /// PEM text (read from `certificateFile`/`keyFile`, or joined from the inline line arrays).
        public var certificatePEM: String
        public var keyPEM: String
        public var certificateFile: String?
        public var keyFile: String?
        public init(certificatePEM: String, keyPEM: String, certificateFile: String? = nil, keyFile: String? = nil) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }
    public var serverName: String?
    public var allowInsecure: Bool = false
    public var alpn: [String] = []
    public var minVersion: String?
    /// Served certificates (usage "encipherment"); the first one is the default when no SNI matches.
    public var certificates: [Certificate] = []
    /// PEM of certificate authorities a client trusts for the server (entries of `certificates` with
    /// usage "verify", certificate only). When non-empty they replace the system roots.
    public var authorityCertificates: [String] = []
    public init() {}
}

/// Top-level `"vmessd"` object (vmessd's own; V2Ray ignores nothing, so this key only exists for us).
public struct DaemonSettings: Codable, Equatable, Sendable {
    public var workers: Int?
    public var drainTimeout: Double?
    public var control: String?
    public var limits = ClientLimits()
    /// Per-user connections, source addresses and rates, across all workers.
    public var userLimits = UserLimitPolicy()
    /// Where users added and removed at runtime are kept across restarts (`stateDirectory`; else
    /// systemd's $STATE_DIRECTORY; else nowhere).
    public var stateDirectory: String?
    /// `removedUsers`: "disconnect" (default) ends a removed user's open connections at once;
    /// "finish" lets them run to their end.
    public var disconnectRemovedUsers = true
    /// `metrics`: the Prometheus endpoint (nil: off).
    public var metrics: MetricsSettings?
    public init() {}
}

/// `"vmessd": {"limits": {...}}`: bounds on what one client can make a worker hold (deploy/RUNBOOK.md
/// "Bounds" lists every bound, configurable or not).
///
/// Connections: how many client connections one worker process holds at once, in all and from one
/// source address. A connection over either limit is closed right after accept (counted, logged at
/// debug). Per worker, not per server: with N workers the server holds N times as many. The defaults
/// fit a small VPS (about 16 kB per idle proxied connection plus two descriptors) while leaving room
/// for many users behind one NAT address.
///
/// UDP toward the client: the largest datagram sent to a client in one piece; larger replies are
/// dropped whole and counted. Measured limits of the clients' own readers and local delivery
/// (replies delivered whole through their SOCKS inbounds): V2Ray 4.34 2038 bytes (it splits larger
/// ones), Xray XUDP 8182 (larger ones arrive mangled), sing-box 1.14 about 16,100 (a larger one ends
/// its whole UDP session, or its whole XUDP mux connection). The default is the largest that every
/// tested client except V2Ray 4.34 delivers whole; a V2Ray-only fleet may set 2038, a sing-box-only
/// one 16000. Datagrams from clients are always taken whole up to 65,535 bytes.
///
/// Waiting bytes: what one worker's connections together hold in the worker after a peer's FIN,
/// waiting for the other side (a slow client, a rate hold) to take them. The kernel reads a socket
/// to its end at a FIN, so each such connection holds up to its socket's receive buffer (MiBs on a
/// fast link). A read that does not fit fails its own connection. The default is far above what
/// slow clients hold in normal use and far below what a worker can; a small VPS may lower it.
public struct ClientLimits: Codable, Equatable, Sendable {
    public static let defaultPerWorker = 16_384
    public static let defaultPerSource = 1_024
    public static let defaultUDPToClient = 8_182
    public static let defaultWaitingBytesPerWorker = 256 << 20
    /// One read's worth (the receive allocator's largest read is 256 KiB) several times over: below
    /// this, a single FIN could fail connections in normal use.
    public static let waitingBytesPerWorkerRange = (1 << 20)...(1 << 40)
    public var connectionsPerWorker = Self.defaultPerWorker
    public var connectionsPerSource = Self.defaultPerSource
    public var udpDatagramToClient = Self.defaultUDPToClient
    public var waitingBytesPerWorker = Self.defaultWaitingBytesPerWorker
    public init() {}
}
