import NIOCore
import Shared

/// SOCKS wire formats (RFC 1928, RFC 1929, SOCKS4/4a), bytes to values and back.
///
///     reply     VER(5) REP RSV(0) ATYP BND.ADDR BND.PORT
///     UDP       RSV(0 0) FRAG ATYP DST.ADDR DST.PORT DATA
///     ATYP      01 IPv4 (4) | 03 domain (len, bytes) | 04 IPv6 (16)
enum SOCKSMessage {
    enum Reply: UInt8 {
        case succeeded = 0x00
        case generalFailure = 0x01
        case notAllowed = 0x02
        case networkUnreachable = 0x03
        case hostUnreachable = 0x04
        case connectionRefused = 0x05
        case ttlExpired = 0x06
        case commandNotSupported = 0x07
        case addressTypeNotSupported = 0x08
    }

    /// A SOCKS5 reply with a bound address (all zero when there is nothing meaningful to say, which
    /// is what V2Ray sends for CONNECT too).
    static func reply(_ code: Reply, address: VMessAddress = .ipv4([0, 0, 0, 0]), port: UInt16 = 0) -> [UInt8] {
        var out: [UInt8] = [0x05, code.rawValue, 0x00]
        appendAddress(address, port: port, to: &out)
        return out
    }

    /// SOCKS4 reply: VN(0) CD(0x5A granted / 0x5B rejected) DSTPORT DSTIP.
    static func reply4(granted: Bool) -> [UInt8] {
        [0x00, granted ? 0x5A : 0x5B, 0, 0, 0, 0, 0, 0]
    }

    static func appendAddress(_ address: VMessAddress, port: UInt16, to out: inout [UInt8]) {
        switch address {
        case .ipv4(let b): out.append(0x01); out += b
        case .ipv6(let b): out.append(0x04); out += b
        case .domain(let d):
            let bytes = Array(d.utf8.prefix(255))
            out.append(0x03)
            out.append(UInt8(bytes.count))
            out += bytes
        }
        out.append(UInt8(port >> 8))
        out.append(UInt8(port & 0xFF))
    }

    enum AddressParse: Equatable {
        case needMore
        case unsupportedType(UInt8)
        case invalid
        /// The address, the port and how many bytes (ATYP through port) they took.
        case parsed(VMessAddress, port: UInt16, length: Int)
    }

    /// ATYP ADDR PORT at `offset` of `buffer` (not consumed). Domains must be hostnames VMess can carry
    /// (§6.4); one that is an IP literal becomes that IP.
    static func parseAddress(_ buffer: ByteBuffer, at offset: Int) -> AddressParse {
        guard let type = buffer.getInteger(at: offset, as: UInt8.self) else { return .needMore }
        let addressLength: Int
        switch type {
        case 0x01: addressLength = 4
        case 0x04: addressLength = 16
        case 0x03:
            guard let n = buffer.getInteger(at: offset + 1, as: UInt8.self) else { return .needMore }
            guard n > 0 else { return .invalid }
            addressLength = 1 + Int(n)
        default: return .unsupportedType(type)
        }
        guard let raw = buffer.getBytes(at: offset + 1, length: addressLength),
              let port = buffer.getInteger(at: offset + 1 + addressLength, as: UInt16.self) else { return .needMore }
        let address: VMessAddress
        switch type {
        case 0x01: address = .ipv4(raw)
        case 0x04: address = .ipv6(raw)
        default:
            // Reuse the VMess address rules: [2, len, name…] is the VMess encoding of a domain.
            guard case .address(let a, _) = VMessAddress.parse([0x02] + raw) else { return .invalid }
            address = a
        }
        return .parsed(address, port: port, length: 1 + addressLength + 2)
    }

    /// A datagram from the client: its destination and payload. nil for anything malformed or
    /// fragmented (FRAG ≠ 0: RFC 1928 lets a server drop fragments, and V2Ray does).
    static func parseDatagram(_ datagram: ByteBuffer) -> (Destination, ByteBuffer)? {
        let start = datagram.readerIndex
        guard datagram.readableBytes >= 4,
              datagram.getInteger(at: start, as: UInt16.self) == 0,
              datagram.getInteger(at: start + 2, as: UInt8.self) == 0 else { return nil }
        guard case .parsed(let address, let port, let length) = parseAddress(datagram, at: start + 3) else { return nil }
        let headerLength = 3 + length
        guard let payload = datagram.getSlice(at: start + headerLength, length: datagram.readableBytes - headerLength)
        else { return nil }
        return (Destination(network: .udp, address: address, port: port), payload)
    }

    /// The UDP header for a reply datagram from `source`.
    static func datagramHeader(source: Destination) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0]
        appendAddress(source.address, port: source.port, to: &out)
        return out
    }
}
