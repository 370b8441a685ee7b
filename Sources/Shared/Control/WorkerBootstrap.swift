// What a worker receives from the supervisor at start: its identity, the validated config and which
// inherited descriptor listens for which inbound.
//
// Transport: the supervisor writes `encoded()` into a sealed memfd and posix_spawns
// `vmessd-worker --bootstrap-fd 3 --binary-fd 5` with that memfd at descriptor 3, the worker's end of
// its control socket (AF_UNIX SOCK_SEQPACKET) at descriptor 4 (`controlFD`) and the binary itself at
// 5 (WorkerLauncher: a worker always runs the binary its supervisor started with). The worker reads
// the memfd to its end, decodes, closes it; then its first control message (`ControlMessage.attach`)
// brings the shared-memory memfd and the listening sockets as SCM_RIGHTS descriptors, in the order
// of `listeners`. Workers never re-read the config file from disk.
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

    /// Decodes a bootstrap and checks that this build reads all of it. A supervisor of another build
    /// can only have written it through a mixed install (one binary of a release replaced, not the
    /// other: the supervisor otherwise runs the worker binary it started with, WorkerLauncher). A
    /// newer supervisor's settings would be silently ignored here (synthesized Decodable skips keys
    /// it does not know), which vmessd never does with a setting; an older one's bootstrap lacks
    /// fields this build requires. Both are a `BuildMismatch`.
    ///
    /// The check: encoding what was decoded must give back as many bytes as were read. Within one
    /// build it does (the same encoder, sorted keys; only a Set's order may differ, never its
    /// length), and any key this build does not read makes the input longer. It costs one encoding;
    /// the key-by-key comparison that names the difference runs only when it fails.
    public static func decode(_ bytes: [UInt8]) throws -> WorkerBootstrap {
        let data = Data(bytes)
        let bootstrap: WorkerBootstrap
        do {
            bootstrap = try JSONDecoder().decode(WorkerBootstrap.self, from: data)
        } catch {
            throw BuildMismatch(detail: "cannot read it: \(error)")
        }
        let reencoded = try bootstrap.encoded()
        guard reencoded.count == bytes.count else {
            let unknown = (try? JSONKeyPaths.missing(from: Data(reencoded), in: data)) ?? []
            guard !unknown.isEmpty else {
                throw BuildMismatch(detail: "it reads back as \(reencoded.count) bytes, not \(bytes.count)")
            }
            let named = unknown.prefix(5).joined(separator: ", ") + (unknown.count > 5 ? ", …" : "")
            throw BuildMismatch(detail: "it has settings this worker does not know: \(named)")
        }
        return bootstrap
    }

    /// The bootstrap was written by a vmessd of another build than this vmessd-worker.
    public struct BuildMismatch: Error, CustomStringConvertible {
        /// What the worker exits with, so that the supervisor can say why (ChildStatus).
        public static let exitStatus: Int32 = 78
        public var detail: String
        public var description: String {
            "the bootstrap from vmessd does not fit this vmessd-worker (\(detail)); vmessd and vmessd-worker must be installed together, from one build"
        }
    }
}
