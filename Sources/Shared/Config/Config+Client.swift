// The client side of the configuration model: the local inbounds a client runs (socks, http,
// dokodemo-door) and the VMess outbound that carries their traffic to a server. Plain data like the
// rest of Config.swift; the parser is in ConfigParser+Socks / +HTTPProxy / +Dokodemo / +VMessOutbound.

/// A user name and password of a local proxy inbound (v4 `accounts[{user, pass}]`).
public struct ProxyAccount: Codable, Equatable, Sendable {
    public var user: String
    public var pass: String
    public init(user: String, pass: String) {
        self.user = user
        self.pass = pass
    }
}

/// `socks` inbound: SOCKS5 (no-auth or RFC 1929 username/password), CONNECT and UDP ASSOCIATE, plus
/// SOCKS4/4a CONNECT when no authentication is required (as V2Ray does).
public struct SocksInboundSettings: Codable, Equatable, Sendable {
    public enum Auth: String, Codable, Sendable { case noAuth = "noauth", password }
    public var auth: Auth = .noAuth
    /// Only meaningful with `auth == .password`; the parser refuses them otherwise.
    public var accounts: [ProxyAccount] = []
    /// v4 `udp` / v5 `udpEnabled`: whether UDP ASSOCIATE is served.
    public var udp: Bool = false
    /// v4 `ip` / v5 `address`: the address told to clients in UDP ASSOCIATE replies. nil: the local
    /// address of the client's TCP connection.
    public var udpAddress: String?
    public var userLevel: Int = 0
    public init() {}
}

/// `http` inbound: CONNECT tunnels and absolute-URI forwarding, optional Basic authentication.
public struct HTTPInboundSettings: Codable, Equatable, Sendable {
    /// Non-empty: every request needs `Proxy-Authorization: Basic` with one of these.
    public var accounts: [ProxyAccount] = []
    public var userLevel: Int = 0
    public init() {}
}

/// `dokodemo-door` inbound: everything that arrives goes to one fixed destination.
public struct DokodemoSettings: Codable, Equatable, Sendable {
    /// IP literal or domain name of the target.
    public var address: String
    public var port: Int
    public var tcp: Bool = true
    public var udp: Bool = false
    public var userLevel: Int = 0
    public init(address: String, port: Int) {
        self.address = address
        self.port = port
    }
}

/// The VMess outbound (client): one or more servers, each with one or more users.
public struct VMessOutboundSettings: Codable, Equatable, Sendable {
    public struct Server: Codable, Equatable, Sendable {
        /// IP literal or domain name.
        public var address: String
        public var port: Int
        /// `security` is the client's choice: aes-128-gcm, chacha20-poly1305, auto (nil), none, zero.
        public var users: [VMessUser]
        public init(address: String, port: Int, users: [VMessUser]) {
            self.address = address
            self.port = port
            self.users = users
        }
    }

    public var servers: [Server]
    /// The outbound's `streamSettings`: how the connection to the server is carried.
    public var stream: StreamSettings = .init()
    /// The outbound's `mux`; nil when off.
    public var mux: MuxSettings?
    public init(servers: [Server]) { self.servers = servers }
}

/// Outbound `mux` (Mux.Cool, vmess-protocol.md §10) when enabled.
public struct MuxSettings: Codable, Equatable, Sendable {
    /// Sessions open at once on one VMess connection (V2Ray: 1…1024, default 8).
    public var concurrency: Int = 8
    public init(concurrency: Int = 8) { self.concurrency = concurrency }
}
