// The admin socket `vmessd ctl` talks to: AF_UNIX SOCK_STREAM at a path, mode 0600 (only the
// service's own user, normally root, may control it). One request line per connection, one JSON
// response, then close. Served from the supervisor's poll loop: clients are non-blocking while the
// request is read (a silent client cannot stall the loop: it is dropped after a few seconds), and the
// response is written with a short send timeout. A reload request stays open until the reload has
// finished, so `vmessd ctl reload` can report the outcome.

import Glibc
import Logging
import Shared

/// Where the admin socket lives: --control, else the config's `vmessd.control`, else
/// /run/vmessd/admin.sock for root, $XDG_RUNTIME_DIR/vmessd/admin.sock, or /tmp/vmessd-UID/admin.sock.
enum AdminSocketPath {
    static func resolve(flag: String?, config: String?, uid: uid_t = getuid(),
                        environment: [String: String] = currentEnvironment()) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let config, !config.isEmpty { return config }
        if uid == 0 { return "/run/vmessd/admin.sock" }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            return "\(runtime)/vmessd/admin.sock"
        }
        return "/tmp/vmessd-\(uid)/admin.sock"
    }

    static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let parts = String(cString: entry).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
            pointer += 1
        }
        return result
    }
}

final class AdminServer {
    final class Client {
        let fd: Int32
        var buffer: [UInt8] = []
        let deadline: Double
        /// A parsed request waiting for its answer (reload).
        var request: AdminRequest?
        /// When the request was complete (monotonic): a reload answers requests made before it began.
        var since = Double.infinity
        init(fd: Int32, deadline: Double) {
            self.fd = fd
            self.deadline = deadline
        }
    }

    static let requestTimeout = 5.0
    static let maximumRequest = 4096

    let path: String
    let listener: Int32
    private let logger: Logger
    private(set) var clients: [Int32: Client] = [:]

    /// Creates the directory if needed (0755 under /run, 0700 elsewhere), replaces a stale socket
    /// file, refuses to take over a socket another process still answers on.
    init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !directory.isEmpty { try Self.makeDirectory(directory) }
        do {
            try Posix.removeStaleUnixSocket(path: path)
        } catch var error as PosixError {
            error.call = "admin socket " + error.call
            throw error
        }
        listener = try Posix.makeUnixListener(path: path, mode: 0o600)
        try Posix.setNonBlocking(listener)
    }

    /// Takes over the listening socket the previous supervisor served (a binary upgrade): same path,
    /// same socket, no gap in which `vmessd ctl` finds nobody.
    init(adopting listener: Int32, path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        self.listener = listener
        try Posix.setNonBlocking(listener)
    }

    /// Stops serving without removing the socket file: the next supervisor answers on it now.
    func handOver() {
        for fd in Array(clients.keys) where clients[fd]?.request == nil { drop(fd) }
        try? Posix.close(listener)
    }

    private static func makeDirectory(_ directory: String) throws {
        var info = stat()
        if stat(directory, &info) == 0 { return }
        // Parents first (XDG_RUNTIME_DIR exists; /run/vmessd's parent does too; a --control path may not).
        let parent = directory.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty { try makeDirectory(parent) }
        let mode: mode_t = directory.hasPrefix("/run/") ? 0o755 : 0o700
        if mkdir(directory, mode) != 0 && errno != EEXIST {
            throw PosixError(errno: errno, call: "mkdir(\(directory))")
        }
    }

    /// Every descriptor to poll. A client whose request is waiting for its answer (a reload) is left
    /// out: if it hung up, poll would report it readable forever; the answer's write finds out.
    var descriptors: [Int32] { [listener] + clients.values.filter { $0.request == nil }.map(\.fd).sorted() }

    var nextDeadline: Double? { clients.values.filter { $0.request == nil }.map(\.deadline).min() }

    /// Accepts what is pending on the listener.
    func acceptClients(now: Double) {
        while let fd = try? Posix.accept(listener) {
            if (try? Posix.setNonBlocking(fd)) == nil {
                try? Posix.close(fd)
                continue
            }
            clients[fd] = Client(fd: fd, deadline: now + Self.requestTimeout)
        }
    }

    /// Reads from a readable client; returns its request once the line is complete. A client that
    /// closes early or sends garbage is dropped (after an error response when it can still read).
    func read(_ fd: Int32) -> AdminRequest? {
        guard let client = clients[fd], client.request == nil else { return nil }
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                client.buffer += chunk[0..<n]
                if let newline = client.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    do {
                        let request = try AdminRequest.decode(Array(client.buffer[..<newline]))
                        client.request = request
                        client.since = monotonicNow()
                        return request
                    } catch {
                        respond(fd, AdminResponse(ok: false, message: "bad request: \(error)"))
                        return nil
                    }
                }
                if client.buffer.count > Self.maximumRequest {
                    respond(fd, AdminResponse(ok: false, message: "request too long"))
                    return nil
                }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
            drop(fd)
            return nil
        }
    }

    /// Writes the response (bounded by a send timeout) and closes the connection.
    func respond(_ fd: Int32, _ response: AdminResponse) {
        guard clients[fd] != nil else { return }
        defer { drop(fd) }
        do {
            try Posix.setNonBlocking(fd, false)
            try Posix.setTimeouts(fd, seconds: 2)
            try Posix.writeAll(fd: fd, try response.encoded())
        } catch {
            logger.debug("admin response not delivered", metadata: ["error": "\(error)"])
        }
    }

    /// Clients still waiting for the answer to `command`.
    func waiting(for command: AdminRequest.Command) -> [Int32] {
        clients.values.filter { $0.request?.command == command }.map(\.fd)
    }

    /// Drops clients that did not send a complete request in time.
    func expire(now: Double) {
        for client in clients.values where client.request == nil && client.deadline <= now {
            drop(client.fd)
        }
    }

    func drop(_ fd: Int32) {
        guard clients.removeValue(forKey: fd) != nil else { return }
        try? Posix.close(fd)
    }

    /// Closes everything and removes the socket file (at exit).
    func close() {
        for fd in Array(clients.keys) { drop(fd) }
        try? Posix.close(listener)
        unlink(path)
    }
}
