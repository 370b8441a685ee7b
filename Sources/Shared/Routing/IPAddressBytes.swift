// IP literals to bytes for routing rules (`"10.0.0.0/8"`, `"::1"`) via inet_pton, so the accepted
// spellings are exactly the system's.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// 4 or 16 bytes, or nil if `text` is not an IPv4 or IPv6 literal.
func ipAddressBytes(_ text: String) -> [UInt8]? {
    guard !text.utf8.contains(0) else { return nil }
    var v4 = [UInt8](repeating: 0, count: 4)
    if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
    var v6 = [UInt8](repeating: 0, count: 16)
    if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
    return nil
}

/// "a.b.c.d/n", "x::y/n" or a plain address (a /32 or /128), or nil.
func cidrFromText(_ text: String) -> CIDR? {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let address = ipAddressBytes(String(parts[0])) else { return nil }
    let bits = address.count * 8
    guard parts.count == 2 else { return CIDR(address: address, prefix: bits) }
    guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 3,
          let prefix = Int(parts[1]), prefix <= bits else { return nil }
    return CIDR(address: address, prefix: prefix)
}

/// The text of 4 or 16 address bytes (inet_ntop's spelling), or nil for another length.
func ipAddressText(_ bytes: [UInt8]) -> String? {
    let family: Int32
    switch bytes.count {
    case 4: family = AF_INET
    case 16: family = AF_INET6
    default: return nil
    }
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
    return String(cString: buffer)
}
