// `listen` naming a Unix domain socket, read the way V2Ray (v4/v5) and Xray read it on Linux
// (transport/internet/system_listener.go in both):
//
//   "/run/vmessd/in.sock"        a file; sun_path = the path, NUL-terminated
//   "/run/vmessd/in.sock,0666"   the same, chmod'ed to 0666 once bound (exactly one comma: the part
//                                after it is an octal mode; with more commas the whole text is the path)
//   "@name"                      abstract (Linux): sun_path = NUL "name", length = 1 + len(name)
//   "@@name"                     abstract, padded: sun_path = NUL "name" NUL NUL … to all 108 bytes, as
//                                HAProxy's "abns@name" and socat's defaults expect
//
// Only text starting with "/" or "@" is a socket (a relative path is not: V2Ray reads it as a host
// name and refuses it). The port is meaningless for such an inbound: V2Ray drops it, and so does vmessd.

/// A Unix-domain listen address: what to bind, and the mode a file socket gets.
public struct UnixListenAddress: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// A file in the filesystem.
        case path
        /// Linux abstract namespace, the name's own length ("@name").
        case abstract
        /// Linux abstract namespace, padded with NULs to the whole sun_path ("@@name").
        case paddedAbstract
    }

    public var kind: Kind
    /// The path, or the abstract name without its "@"s.
    public var name: String
    /// Permission bits for a file socket (",0666"); nil: as the umask leaves them.
    public var mode: UInt32?

    /// sun_path's size on Linux; a file path needs its NUL terminator inside it.
    public static let sunPathSize = 108

    public init(kind: Kind, name: String, mode: UInt32? = nil) {
        self.kind = kind
        self.name = name
        self.mode = mode
    }

    /// Whether V2Ray would read `text` as a Unix socket rather than an IP address or host name.
    public static func isUnixSocket(_ text: String) -> Bool { text.hasPrefix("/") || text.hasPrefix("@") }

    /// Parses a `listen` value that `isUnixSocket`; throws a reason for the config error.
    public init(parsing text: String) throws(Problem) {
        guard !text.utf8.contains(0) else { throw Problem("a Unix socket name cannot contain a NUL byte") }
        if text.hasPrefix("@@") {
            self.init(kind: .paddedAbstract, name: String(text.dropFirst(2)))
        } else if text.hasPrefix("@") {
            self.init(kind: .abstract, name: String(text.dropFirst()))
        } else {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            if parts.count == 2 {
                // Go's strconv.ParseUint(s, 8, 32): octal digits only, no sign, no prefix, < 2^32.
                guard !parts[1].isEmpty, parts[1].utf8.count <= 11, parts[1].allSatisfy({ ("0"..."7").contains($0) }),
                      let mode = UInt64(parts[1], radix: 8), mode <= UInt64(UInt32.max) else {
                    throw Problem("file mode \(JSONC.quote(String(parts[1]))) after the comma is not an octal number like 0666")
                }
                // Go's os.Chmod takes only the permission bits of a plain number (os.FileMode.Perm).
                self.init(kind: .path, name: String(parts[0]), mode: UInt32(mode) & 0o777)
            } else {
                self.init(kind: .path, name: text)
            }
        }
        guard !name.isEmpty else { throw Problem("the Unix socket name is empty") }
        // A path needs its terminating NUL inside sun_path; an abstract name follows the leading NUL.
        guard name.utf8.count <= Self.sunPathSize - 1 else {
            throw Problem("the Unix socket name is \(name.utf8.count) bytes; at most \(Self.sunPathSize - 1) fit")
        }
        if kind == .path && !name.hasPrefix("/") { throw Problem("a Unix socket path must be absolute") }
    }

    /// The bytes of sun_path that the kernel compares (the address length is 2 + this count).
    public var sunPath: [UInt8] {
        switch kind {
        case .path: return Array(name.utf8) + [0]
        case .abstract: return [0] + Array(name.utf8)
        case .paddedAbstract:
            let bytes = [0] + Array(name.utf8)
            return bytes + [UInt8](repeating: 0, count: Self.sunPathSize - bytes.count)
        }
    }

    /// Whether `bytes` (sun_path as getsockname returns it, `length - 2` bytes) names this address.
    public func matches(sunPath bytes: [UInt8]) -> Bool {
        switch kind {
        case .path:
            // Linux reports a path with or without its NUL depending on how it was bound.
            let path = bytes.prefix { $0 != 0 }
            return bytes.first != 0 && Array(path) == Array(name.utf8)
        case .abstract, .paddedAbstract:
            return bytes == sunPath
        }
    }

    /// As the config writes it, without the mode: "/run/x.sock", "@name", "@@name".
    public var description: String {
        switch kind {
        case .path: name
        case .abstract: "@" + name
        case .paddedAbstract: "@@" + name
        }
    }

    public struct Problem: Error, CustomStringConvertible, Equatable, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
