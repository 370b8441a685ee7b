/// A destination as VMess and Mux.Cool carry it (vmess-protocol.md §6.4):
///
///     0x01 IPv4 (4 bytes) | 0x02 domain (len:1, bytes) | 0x03 IPv6 (16 bytes)
public enum VMessAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    case ipv4([UInt8])
    case domain(String)
    case ipv6([UInt8])

    public var typeByte: UInt8 {
        switch self { case .ipv4: 1; case .domain: 2; case .ipv6: 3 }
    }

    public var encodedLength: Int {
        switch self {
        case .ipv4: 5
        case .domain(let d): 2 + d.utf8.count
        case .ipv6: 17
        }
    }

    public func encode(into out: inout [UInt8]) {
        out.append(typeByte)
        switch self {
        case .ipv4(let b), .ipv6(let b): out += b
        case .domain(let d):
            out.append(UInt8(d.utf8.count))
            out += Array(d.utf8)
        }
    }

    public enum ParseResult: Equatable {
        case needMore
        case invalid
        case address(VMessAddress, length: Int)
    }

    /// Parses type + address from the start of `bytes`. Domains must be 1-255 bytes of
    /// `[A-Za-z0-9._-]` (§16.21); a domain that is an IP literal becomes that IP, as the reference does.
    public static func parse<C: RandomAccessCollection>(_ bytes: C) -> ParseResult where C.Element == UInt8, C.Index == Int {
        guard let t = bytes.first else { return .needMore }
        let s = bytes.startIndex
        switch t {
        case 1:
            guard bytes.count >= 5 else { return .needMore }
            return .address(.ipv4(Array(bytes[(s + 1)..<(s + 5)])), length: 5)
        case 3:
            guard bytes.count >= 17 else { return .needMore }
            return .address(.ipv6(Array(bytes[(s + 1)..<(s + 17)])), length: 17)
        case 2:
            guard bytes.count >= 2 else { return .needMore }
            let n = Int(bytes[s + 1])
            guard n > 0 else { return .invalid }
            guard bytes.count >= 2 + n else { return .needMore }
            let raw = bytes[(s + 2)..<(s + 2 + n)]
            for c in raw where !isHostnameByte(c) { return .invalid }
            let text = String(decoding: raw, as: UTF8.self)
            if let ip = IPLiteral.parse(text) { return .address(ip, length: 2 + n) }
            // Brackets and colons are only allowed as part of an IP literal.
            if raw.contains(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") }) {
                return .invalid
            }
            return .address(.domain(text), length: 2 + n)
        default:
            return .invalid
        }
    }

    private static func isHostnameByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"),
             UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):
            true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let b): b.map(String.init).joined(separator: ".")
        case .domain(let d): d
        case .ipv6(let b):
            "[" + stride(from: 0, to: 16, by: 2).map { String(UInt16(b[$0]) << 8 | UInt16(b[$0 + 1]), radix: 16) }
                .joined(separator: ":") + "]"
        }
    }

    /// The host text to hand to a resolver or connect call (no brackets for IPv6).
    public var hostText: String {
        switch self {
        case .ipv6:
            let d = description
            return String(d.dropFirst().dropLast())
        default: return description
        }
    }
}

/// IP literal parsing through inet_pton (no allocation beyond the result).
public enum IPLiteral {
    public static func parse(_ text: String) -> VMessAddress? {
        var t = text
        if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
        var v4 = [UInt8](repeating: 0, count: 4)
        if t.withCString({ inet_pton_v4($0, &v4) }) { return .ipv4(v4) }
        var v6 = [UInt8](repeating: 0, count: 16)
        if t.withCString({ inet_pton_v6($0, &v6) }) { return .ipv6(v6) }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#endif

private func inet_pton_v4(_ s: UnsafePointer<CChar>, _ out: inout [UInt8]) -> Bool {
    out.withUnsafeMutableBytes { inet_pton(AF_INET, s, $0.baseAddress) == 1 }
}

private func inet_pton_v6(_ s: UnsafePointer<CChar>, _ out: inout [UInt8]) -> Bool {
    out.withUnsafeMutableBytes { inet_pton(AF_INET6, s, $0.baseAddress) == 1 }
}
