// The PROXY protocol header a load balancer (HAProxy `send-proxy`/`send-proxy-v2`, nginx
// `proxy_protocol`, cloud balancers) puts in front of a TCP stream to say who the client is, read
// from the spec haproxy publishes (doc/proxy-protocol.txt). Pure: bytes in, a verdict out.
//
//   v1 (text, at most 107 bytes with the CRLF):
//     "PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n"
//     "PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n"
//     "PROXY UNKNOWN[ anything]\r\n"                       → use the real peer
//
//   v2 (binary):
//     0          12        13         14           16
//     +----------+---------+----------+------------+-----------------------------------------+
//     | \r\n\r\n\0\r\nQUIT\n | ver|cmd | fam|proto | len (BE16) | addresses (len bytes, then TLVs) |
//     +----------+---------+----------+------------+-----------------------------------------+
//     ver 2; cmd 0 LOCAL (a health check from the balancer itself: use the real peer), 1 PROXY.
//     fam|proto: 0x00 UNSPEC, 0x11/0x12 IPv4 (src 4, dst 4, sport 2, dport 2 = 12 bytes),
//     0x21/0x22 IPv6 (16, 16, 2, 2 = 36 bytes), 0x31/0x32 UNIX (108 + 108 = 216 bytes); any other
//     value is invalid. After the addresses: TLVs {type (1), length (BE16), value}, which must tile
//     the rest of `len` exactly; their contents are not needed here and are skipped.

import NIOCore

public enum ProxyProtocolHeader {
    /// What the header says about the connection.
    public enum Origin: Equatable, Sendable {
        /// The client's address and port as the balancer saw them.
        case client(NIOCore.SocketAddress)
        /// v2 LOCAL, v1 UNKNOWN, v2 UNSPEC or UNIX: no client address; the real peer is the client.
        case peer
    }

    public enum ParseResult: Equatable, Sendable {
        /// Everything so far is a valid prefix of a header that fits the bound.
        case needMore
        /// A whole header of `consumed` bytes; anything after it is the client's stream.
        case parsed(Origin, consumed: Int)
        case invalid(ProxyProtocolError)
    }

    /// The longest v1 line the spec allows, CRLF included.
    public static let maxV1Length = 107
    /// v2's 16 fixed bytes.
    public static let v2FixedLength = 16
    /// The bound on a whole v2 header (16 bytes and `len`) unless the caller gives another. `len` may
    /// say up to 65535; 4 KiB holds the addresses and every TLV HAProxy sends (SSL details, unique
    /// id, authority) while keeping what an unauthenticated peer can make a worker buffer small.
    public static let defaultMaxLength = 4096

    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// Reads a header from the start of `bytes`. Never reads past `bytes`, never asks for more than
    /// `maxLength` bytes in all (a longer header is `.invalid(.tooLong)`).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxLength: Int = defaultMaxLength) -> ParseResult {
        guard let first = bytes.first else { return .needMore }
        if first == v1Prefix[0] { return parseV1(bytes) }
        if first == v2Signature[0] { return parseV2(bytes, maxLength: max(maxLength, v2FixedLength)) }
        return .invalid(.noSignature)
    }

    // MARK: v1

    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        // The prefix is checked on whatever has arrived, so a wrong stream fails at once.
        for (i, expected) in v1Prefix.enumerated() where i < bytes.count {
            guard bytes[i] == expected else { return .invalid(.noSignature) }
        }
        let window = min(bytes.count, maxV1Length)
        var lineEnd: Int?
        for i in v1Prefix.count..<max(window, v1Prefix.count) {
            let b = bytes[i]
            if b == 0x0D {
                guard i + 2 <= maxV1Length else { return .invalid(.tooLong) }
                guard i + 1 < bytes.count else { return i + 1 < maxV1Length ? .needMore : .invalid(.tooLong) }
                guard bytes[i + 1] == 0x0A else { return .invalid(.malformedV1) }
                lineEnd = i
                break
            }
            // Printable ASCII only: the line is addresses, ports and keywords.
            guard (0x20...0x7E).contains(b) else { return .invalid(.malformedV1) }
        }
        guard let lineEnd else {
            return bytes.count >= maxV1Length ? .invalid(.tooLong) : .needMore
        }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[v1Prefix.count..<lineEnd]), as: UTF8.self)
        let consumed = lineEnd + 2
        // UNKNOWN: the rest of the line is to be ignored (spec 2.1).
        if line == "UNKNOWN" || line.hasPrefix("UNKNOWN ") { return .parsed(.peer, consumed: consumed) }
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 5 else { return .invalid(.malformedV1) }
        let isV6: Bool
        switch fields[0] {
        case "TCP4": isV6 = false
        case "TCP6": isV6 = true
        default: return .invalid(.malformedV1)
        }
        guard let sourcePort = v1Port(fields[3]), v1Port(fields[4]) != nil,
              let source = v1Address(fields[1], port: sourcePort, v6: isV6),
              v1Address(fields[2], port: 0, v6: isV6) != nil
        else { return .invalid(.malformedV1) }
        return .parsed(.client(source), consumed: consumed)
    }

    /// 0-65535 in decimal, no sign, no leading zero (spec 2.1).
    private static func v1Port(_ text: Substring) -> Int? {
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              text == "0" || text.utf8.first != 0x30, let value = Int(text), value <= 65535
        else { return nil }
        return value
    }

    /// inet_pton decides (through NIO), so "1.2.3.04" is refused; a zone ("%eth0"), which NIO would
    /// take, is not an address a peer elsewhere can have; the family must be the one the line names.
    private static func v1Address(_ text: Substring, port: Int, v6: Bool) -> NIOCore.SocketAddress? {
        guard !text.isEmpty, text.utf8.count <= 45, !text.utf8.contains(UInt8(ascii: "%")), let address = try? NIOCore.SocketAddress(ipAddress: String(text), port: port)
        else { return nil }
        switch address {
        case .v4: return v6 ? nil : address
        case .v6: return v6 ? address : nil
        default: return nil
        }
    }

    // MARK: v2

    private static func parseV2(_ bytes: UnsafeRawBufferPointer, maxLength: Int) -> ParseResult {
        for (i, expected) in v2Signature.enumerated() where i < bytes.count {
            guard bytes[i] == expected else { return .invalid(.noSignature) }
        }
        if bytes.count > 12 {
            let version = bytes[12] >> 4, command = bytes[12] & 0x0F
            guard version == 2 else { return .invalid(.badVersion(bytes[12])) }
            guard command <= 1 else { return .invalid(.badCommand(bytes[12])) }
        }
        if bytes.count > 13 {
            guard [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32].contains(bytes[13]) else {
                return .invalid(.badFamily(bytes[13]))
            }
        }
        guard bytes.count >= v2FixedLength else { return .needMore }
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        let total = v2FixedLength + length  // at most 16 + 65535: no overflow
        guard total <= maxLength else { return .invalid(.tooLong) }
        let isLocal = bytes[12] & 0x0F == 0
        let family = bytes[13] >> 4
        let addressLength: Int
        switch family {
        case 1: addressLength = 12
        case 2: addressLength = 36
        case 3: addressLength = 216
        default: addressLength = 0
        }
        // LOCAL may carry any family with any content: the receiver ignores it (spec 2.2). PROXY must
        // carry at least its addresses.
        if !isLocal, length < addressLength { return .invalid(.shortAddresses(length)) }
        guard bytes.count >= total else { return .needMore }
        let block = UnsafeRawBufferPointer(rebasing: bytes[v2FixedLength..<total])
        if isLocal { return .parsed(.peer, consumed: total) }
        guard tlvsTile(UnsafeRawBufferPointer(rebasing: block[addressLength...])) else { return .invalid(.badTLV) }
        let origin: Origin
        switch family {
        case 1:
            let port = Int(block[8]) << 8 | Int(block[9])
            origin = .client(address(UnsafeRawBufferPointer(rebasing: block[0..<4]), port: port))
        case 2:
            let port = Int(block[32]) << 8 | Int(block[33])
            origin = .client(address(UnsafeRawBufferPointer(rebasing: block[0..<16]), port: port))
        default:
            origin = .peer  // UNSPEC and UNIX say nothing an IP rule or limit could use
        }
        return .parsed(origin, consumed: total)
    }

    /// True when `bytes` is a sequence of whole TLVs.
    private static func tlvsTile(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < bytes.count {
            guard bytes.count - i >= 3 else { return false }
            let length = Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard bytes.count - i - 3 >= length else { return false }
            i += 3 + length
        }
        return true
    }

    private static func address(_ packed: UnsafeRawBufferPointer, port: Int) -> NIOCore.SocketAddress {
        var buffer = ByteBuffer()
        buffer.writeBytes(packed)
        // 4 or 16 bytes and a port below 65536: NIO cannot refuse these.
        return try! NIOCore.SocketAddress(packedIPAddress: buffer, port: port)
    }
}

public enum ProxyProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Neither "PROXY " nor the v2 signature.
    case noSignature
    case malformedV1
    /// Past the size bound (v1's 107 bytes, or the v2 bound) without a whole header.
    case tooLong
    case badVersion(UInt8)
    case badCommand(UInt8)
    case badFamily(UInt8)
    /// A v2 PROXY header whose `len` is shorter than its family's addresses.
    case shortAddresses(Int)
    case badTLV

    public var description: String {
        switch self {
        case .noSignature: "no PROXY protocol signature"
        case .malformedV1: "malformed PROXY v1 line"
        case .tooLong: "PROXY header too long"
        case .badVersion(let b): "PROXY v2 version byte 0x\(String(b, radix: 16))"
        case .badCommand(let b): "PROXY v2 command byte 0x\(String(b, radix: 16))"
        case .badFamily(let b): "PROXY v2 family byte 0x\(String(b, radix: 16))"
        case .shortAddresses(let n): "PROXY v2 length \(n) shorter than its addresses"
        case .badTLV: "PROXY v2 TLVs do not fit its length"
        }
    }

    /// For counters: one word per kind.
    public var counterName: String {
        switch self {
        case .noSignature: "proxy_no_signature"
        case .malformedV1: "proxy_v1_malformed"
        case .tooLong: "proxy_too_long"
        case .badVersion, .badCommand, .badFamily, .shortAddresses, .badTLV: "proxy_v2_malformed"
        }
    }
}
