// What a worker receives from the supervisor at start: its identity, the validated config and which
// inherited descriptor listens for which inbound.
//
// Transport: the supervisor writes `encoded()` into a sealed memfd and posix_spawns
// `vmessd-worker --bootstrap-fd 3 --binary-fd 5` with that memfd at descriptor 3, the worker's end of
// its control socket (AF_UNIX SOCK_SEQPACKET) at descriptor 4 (`controlFD`) and the binary itself at 5
// (WorkerLauncher: a worker always runs the binary its supervisor started with). The worker reads the memfd to its end,
// decodes, closes it; then its first control message (`ControlMessage.attach`) brings the
// shared-memory memfd and the listening sockets as SCM_RIGHTS descriptors, in the order of
// `listeners`. Workers never re-read the config file from disk.
//
// Without `controlFD` (a worker started by hand, or by a test), the listening sockets are expected at
// the descriptor numbers named in `listeners` and the worker runs alone: in-process replay filter,
// no heartbeat, SIGTERM to drain.

import struct Foundation.Data
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder

public struct WorkerBootstrap: Codable, Equatable, Sendable {
    public struct Listener: Codable, Equatable, Sendable {
        /// Index into `config.inbounds`.
        public var inbound: Int
        /// Descriptor number in the worker process when inherited (no control socket); with a control
        /// socket the descriptors come with the attach message and this is -1.
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
    /// Control socket descriptor in the worker (AF_UNIX SOCK_SEQPACKET), or nil for a worker without
    /// a supervisor.
    public var controlFD: Int32?
    /// The worker's slot in the shared-memory region (WorkerSlots), when it gets one.
    public var sharedMemorySlot: Int?

    public init(workerID: Int, generation: Int, config: Config, listeners: [Listener], controlFD: Int32? = nil,
                sharedMemorySlot: Int? = nil) {
        self.workerID = workerID
        self.generation = generation
        self.config = config
        self.listeners = listeners
        self.controlFD = controlFD
        self.sharedMemorySlot = sharedMemorySlot
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
