// Numeric socket addresses: the config names listen addresses as IP literals, and logs should show
// exactly what the kernel bound (including the port it picked for port 0).

import Glibc

/// An IPv4 or IPv6 address with a port, as text the user can read and the kernel can take.
public struct SocketAddress: CustomStringConvertible, Equatable, Hashable, Sendable {
    public enum Family: Sendable { case ipv4, ipv6 }
    public var family: Family
    /// Numeric form without brackets ("127.0.0.1", "::1", "fe80::1%eth0").
    public var host: String
    public var port: Int

    public init(family: Family, host: String, port: Int) {
        self.family = family
        self.host = host
        self.port = port
    }

    /// "127.0.0.1:10086" or "[::1]:10086".
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// True for 0.0.0.0 and ::, which accept on every local address.
    public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }
}

/// A listen address that is not a usable IP literal (V2Ray also allows host names and unix socket
/// paths there; vmessd listens on IP addresses only).
public struct AddressError: Error, CustomStringConvertible, Equatable, Sendable {
    public var host: String
    public var port: Int
    public var reason: String
    public var description: String { "listen address \"\(host)\" port \(port): \(reason)" }
}

extension SocketAddress {
    /// Parses an IP literal ("127.0.0.1", "::", "[::1]", "fe80::1%eth0") and a port.
    public init(parsing text: String, port: Int) throws {
        guard (0...65535).contains(port) else {
            throw AddressError(host: text, port: port, reason: "port out of range 0-65535")
        }
        var host = text
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.contains(":") {
            var probe = in6_addr()
            let address = host.split(separator: "%", maxSplits: 1).first.map(String.init) ?? host
            guard inet_pton(AF_INET6, address, &probe) == 1 else {
                throw AddressError(host: text, port: port, reason: "not an IPv6 address literal")
            }
            self.init(family: .ipv6, host: host, port: port)
        } else {
            var probe = in_addr()
            guard inet_pton(AF_INET, host, &probe) == 1 else {
                throw AddressError(host: text, port: port, reason: "not an IPv4 or IPv6 address literal")
            }
            self.init(family: .ipv4, host: host, port: port)
        }
    }

    /// Calls `body` with this address as a sockaddr of the right family and length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        switch family {
        case .ipv4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = in_port_t(UInt16(port).bigEndian)
            _ = inet_pton(AF_INET, host, &sin.sin_addr)
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = in_port_t(UInt16(port).bigEndian)
            let parts = host.split(separator: "%", maxSplits: 1).map(String.init)
            _ = inet_pton(AF_INET6, parts[0], &sin6.sin6_addr)
            if parts.count == 2 {
                // Link-local scope: an interface name or a numeric index.
                let index = if_nametoindex(parts[1])
                let scope = index != 0 ? index : UInt32(parts[1]) ?? 0
                guard scope != 0 else {
                    throw AddressError(host: host, port: port, reason: "unknown interface \"\(parts[1])\"")
                }
                sin6.sin6_scope_id = scope
            }
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// Reads a sockaddr_in or sockaddr_in6 filled in by the kernel.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            var address = sin.sin_addr
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
            self.init(family: .ipv4, host: String(cString: text), port: Int(UInt16(bigEndian: sin.sin_port)))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            var address = sin6.sin6_addr
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
            var host = String(cString: text)
            if sin6.sin6_scope_id != 0 { host += "%\(sin6.sin6_scope_id)" }
            self.init(family: .ipv6, host: host, port: Int(UInt16(bigEndian: sin6.sin6_port)))
        default:
            return nil
        }
    }
}
