// What `vmessd ctl` and the supervisor's admin socket say to each other: one JSON request line from
// the client, one JSON response from the supervisor, then the supervisor closes the connection.
// AF_UNIX SOCK_STREAM at a 0600 path, so only the service's user (root, usually) can talk to it.

import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder

public struct AdminRequest: Codable, Equatable, Sendable {
    public enum Command: String, Codable, Sendable, CaseIterable {
        case status, reload, stop, stats, users, upgrade
    }

    public var command: Command
    /// `users add|remove|list …` (absent for the other commands and plain `users`).
    public var arguments: [String]?

    public init(command: Command, arguments: [String]? = nil) {
        self.command = command
        self.arguments = arguments
    }
}

public struct AdminResponse: Codable, Equatable, Sendable {
    public var ok: Bool
    /// One line for people: "reloaded: generation 3", "reload failed: config.json: …".
    public var message: String
    public var status: AdminStatus?
    public var stats: AdminStats?
    /// `users list`: the users an inbound serves now (config file and runtime changes).
    public var users: [VMessUser]?

    public init(ok: Bool, message: String, status: AdminStatus? = nil, stats: AdminStats? = nil, users: [VMessUser]? = nil) {
        self.ok = ok
        self.message = message
        self.status = status
        self.stats = stats
        self.users = users
    }
}

public struct AdminStatus: Codable, Equatable, Sendable {
    public struct Worker: Codable, Equatable, Sendable {
        public var index: Int
        public var pid: Int32
        public var generation: Int
        /// starting, ready, draining
        public var state: String
        public var uptimeSeconds: Double
        public var connections: UInt64
        public var accepted: UInt64
        public var rejected: UInt64
        public var restarts: Int
        /// accept(2) failures (out of descriptors or memory), each followed by a pause in accepting.
        public var acceptErrors: UInt64
        public init(index: Int, pid: Int32, generation: Int, state: String, uptimeSeconds: Double,
                    connections: UInt64, accepted: UInt64, rejected: UInt64, restarts: Int, acceptErrors: UInt64 = 0) {
            self.index = index
            self.pid = pid
            self.generation = generation
            self.state = state
            self.uptimeSeconds = uptimeSeconds
            self.connections = connections
            self.accepted = accepted
            self.rejected = rejected
            self.restarts = restarts
            self.acceptErrors = acceptErrors
        }
    }

    public struct Slot: Codable, Equatable, Sendable {
        public var index: Int
        public var restarts: Int
        public var lastExit: String?
        /// Several quick failures in a row: respawns are backing off.
        public var crashLoop: Bool
        /// Seconds until the next respawn, when one is waiting.
        public var nextRestartIn: Double?
        public init(index: Int, restarts: Int, lastExit: String?, crashLoop: Bool, nextRestartIn: Double?) {
            self.index = index
            self.restarts = restarts
            self.lastExit = lastExit
            self.crashLoop = crashLoop
            self.nextRestartIn = nextRestartIn
        }
    }

    public struct Listener: Codable, Equatable, Sendable {
        public var inbound: String
        public var address: String
        public var sockets: Int
        /// Passed by systemd (socket activation) rather than opened by vmessd.
        public var activated: Bool
        public init(inbound: String, address: String, sockets: Int, activated: Bool) {
            self.inbound = inbound
            self.address = address
            self.sockets = sockets
            self.activated = activated
        }
    }

    public var pid: Int32
    public var generation: Int
    /// running, reloading, stopping
    public var phase: String
    public var uptimeSeconds: Double
    public var config: String
    public var workersConfigured: Int
    public var connections: UInt64
    /// The text last sent as STATUS= (also without systemd).
    public var statusText: String
    public var lastReload: String?
    public var workers: [Worker]
    public var slots: [Slot]
    public var listeners: [Listener]

    public init(pid: Int32, generation: Int, phase: String, uptimeSeconds: Double, config: String,
                workersConfigured: Int, connections: UInt64, statusText: String, lastReload: String?,
                workers: [Worker], slots: [Slot], listeners: [Listener]) {
        self.pid = pid
        self.generation = generation
        self.phase = phase
        self.uptimeSeconds = uptimeSeconds
        self.config = config
        self.workersConfigured = workersConfigured
        self.connections = connections
        self.statusText = statusText
        self.lastReload = lastReload
        self.workers = workers
        self.slots = slots
        self.listeners = listeners
    }
}

public struct AdminStats: Codable, Equatable, Sendable {
    public struct User: Codable, Equatable, Sendable {
        public var user: String
        public var up: UInt64
        public var down: UInt64
        /// With per-user limits or online statistics configured: the user's open connections on
        /// every worker, and the client addresses they come from (UserLimitTable).
        public var open: Int?
        public var addresses: [String]?
        public init(user: String, up: UInt64, down: UInt64, open: Int? = nil, addresses: [String]? = nil) {
            self.user = user
            self.up = up
            self.down = down
            self.open = open
            self.addresses = addresses
        }
    }

    /// Since the supervisor started, over every worker that ever ran (live ones included).
    public var accepted: UInt64
    public var bytesUp: UInt64
    public var bytesDown: UInt64
    public var rejected: [String: UInt64]
    public var users: [User]
    public var workerRestarts: Int
    public var reloads: Int
    public var replayEntries: Int?
    /// Bytes through each inbound (its tag, else its JSON path), framing included, by direction:
    /// the metrics table's (absent from a supervisor older than it).
    public var inboundsUp: [String: UInt64]?
    public var inboundsDown: [String: UInt64]?

    public init(accepted: UInt64, bytesUp: UInt64, bytesDown: UInt64, rejected: [String: UInt64], users: [User],
                workerRestarts: Int, reloads: Int, replayEntries: Int? = nil) {
        self.accepted = accepted
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.rejected = rejected
        self.users = users
        self.workerRestarts = workerRestarts
        self.reloads = reloads
        self.replayEntries = replayEntries
    }
}

extension AdminRequest {
    public func encodedLine() throws -> [UInt8] {
        Array(try JSONEncoder().encode(self)) + [UInt8(ascii: "\n")]
    }

    public static func decode(_ bytes: [UInt8]) throws -> AdminRequest {
        try JSONDecoder().decode(AdminRequest.self, from: Data(bytes))
    }
}

extension AdminResponse {
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    public static func decode(_ bytes: [UInt8]) throws -> AdminResponse {
        try JSONDecoder().decode(AdminResponse.self, from: Data(bytes))
    }
}
