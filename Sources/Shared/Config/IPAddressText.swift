// IP address literals for `listen`. inet_pton decides what is a literal (so the rules are exactly the
// ones bind(2) will later see) and inet_ntop gives one spelling per address, so "::0" and "::" compare
// equal when the parser looks for two inbounds on the same address and port.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The canonical text of an IPv4 or IPv6 literal (no brackets, no zone), or nil if `text` is not one.
func canonicalIPAddress(_ text: String) -> String? {
    // inet_pton reads a C string: an embedded NUL would cut the text short and pass a prefix.
    guard !text.utf8.contains(0) else { return nil }
    for family in [AF_INET, AF_INET6] {
        var address = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, text, &address) == 1 else { continue }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(cString: buffer)
    }
    return nil
}
