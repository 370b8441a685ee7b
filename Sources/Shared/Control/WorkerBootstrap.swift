// What a worker receives from the supervisor at start: its identity, the validated config and which
// inherited descriptor listens for which inbound.
//
// Transport: the supervisor writes `encoded()` into a sealed memfd, and posix_spawns
// `vmessd-worker --bootstrap-fd N` with that memfd and every listening socket inherited (dup2'd with
// posix_spawn file actions to the descriptor numbers named in `listeners`). The worker reads the memfd
// to its end, decodes, closes it. Workers never re-read the config file from disk.

import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder

public struct WorkerBootstrap: Codable, Equatable, Sendable {
    public struct Listener: Codable, Equatable, Sendable {
        /// Index into `config.inbounds`.
        public var inbound: Int
        /// Descriptor number in the worker process.
        public var fd: Int32
        public init(inbound: Int, fd: Int32) {
            self.inbound = inbound
            self.fd = fd
        }
    }

    public var workerID: Int
    public var generation: Int
    public var config: Config
    public var listeners: [Listener]
    /// Control socket descriptor in the worker (AF_UNIX SOCK_SEQPACKET), or nil in the first cut.
    public var controlFD: Int32?

    public init(workerID: Int, generation: Int, config: Config, listeners: [Listener], controlFD: Int32? = nil) {
        self.workerID = workerID
        self.generation = generation
        self.config = config
        self.listeners = listeners
        self.controlFD = controlFD
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> WorkerBootstrap {
        try JSONDecoder().decode(WorkerBootstrap.self, from: Data(bytes))
    }
}
