import NIOCore
import Shared

/// The SOCKS server handshake as a pure state machine:
///
///     SOCKS5:  greeting  05 N methods…            → 05 method (00 none | 02 password | FF refused)
///              [RFC 1929: 01 ulen user plen pass   → 01 00 ok | 01 01 refused]
///              request   05 cmd 00 ATYP addr port  → connect | UDP associate | 05 REP … refused
///     SOCKS4a: 04 01 port ip userid\0 [domain\0]   → connect (only without authentication, as V2Ray)
///
/// Every message is bounded by its format (≤ 515 bytes); SOCKS4 strings are capped at 255 bytes.
struct SOCKSHandshake: ClientHandshake {
    private enum State { case start, greeting5, auth, request5, request4, done }

    let settings: SocksInboundSettings
    private var state = State.start
    let name = "socks"

    init(settings: SocksInboundSettings) { self.settings = settings }

    mutating func step(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        switch state {
        case .done:
            return .needMore
        case .start:
            guard let version = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
            switch version {
            case 0x05: state = .greeting5
            case 0x04: state = .request4
            default: return refuse([])  // not SOCKS: close without a word
            }
            return step(&buffer)
        case .greeting5:
            return greeting(&buffer)
        case .auth:
            return authenticate(&buffer)
        case .request5:
            return request(&buffer)
        case .request4:
            return request4(&buffer)
        }
    }

    private mutating func refuse(_ reply: [UInt8]) -> ClientHandshakeStep {
        state = .done
        return .refuse(reply)
    }

    private mutating func greeting(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        let s = buffer.readerIndex
        guard let count = buffer.getInteger(at: s + 1, as: UInt8.self),
              let methods = buffer.getBytes(at: s + 2, length: Int(count)) else { return .needMore }
        buffer.moveReaderIndex(forwardBy: 2 + Int(count))
        let wanted: UInt8 = settings.auth == .password ? 0x02 : 0x00
        guard methods.contains(wanted) else { return refuse([0x05, 0xFF]) }
        state = settings.auth == .password ? .auth : .request5
        return .reply([0x05, wanted])
    }

    /// RFC 1929. The version byte is 0x01; a few old clients send 0x05, which V2Ray also accepts.
    private mutating func authenticate(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        let s = buffer.readerIndex
        guard let version = buffer.getInteger(at: s, as: UInt8.self),
              let userLength = buffer.getInteger(at: s + 1, as: UInt8.self) else { return .needMore }
        guard version == 0x01 || version == 0x05 else { return refuse([0x01, 0x01]) }
        guard let user = buffer.getBytes(at: s + 2, length: Int(userLength)),
              let passLength = buffer.getInteger(at: s + 2 + Int(userLength), as: UInt8.self),
              let pass = buffer.getBytes(at: s + 3 + Int(userLength), length: Int(passLength)) else { return .needMore }
        buffer.moveReaderIndex(forwardBy: 3 + Int(userLength) + Int(passLength))
        let ok = settings.accounts.contains { Array($0.user.utf8) == user && Array($0.pass.utf8) == pass }
        guard ok else { return refuse([0x01, 0x01]) }
        state = .request5
        return .reply([0x01, 0x00])
    }

    private mutating func request(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        let s = buffer.readerIndex
        guard let version = buffer.getInteger(at: s, as: UInt8.self),
              let command = buffer.getInteger(at: s + 1, as: UInt8.self),
              buffer.readableBytes >= 4 else { return .needMore }
        guard version == 0x05 else { return refuse([]) }
        let address: VMessAddress, port: UInt16, length: Int
        switch SOCKSMessage.parseAddress(buffer, at: s + 3) {
        case .needMore: return .needMore
        case .unsupportedType: return refuse(SOCKSMessage.reply(.addressTypeNotSupported))
        case .invalid: return refuse(SOCKSMessage.reply(.generalFailure))
        case .parsed(let a, let p, let n): (address, port, length) = (a, p, n)
        }
        buffer.moveReaderIndex(forwardBy: 3 + length)
        switch command {
        case 0x01:
            state = .done
            // Like V2Ray, success is answered at once: the real connect happens at the far end of the
            // tunnel, and answering now lets the client's first bytes ride with the VMess header.
            return .connect(ClientRequest(destination: Destination(network: .tcp, address: address, port: port),
                                          reply: SOCKSMessage.reply(.succeeded)))
        case 0x03 where settings.udp:
            state = .done
            return .associateUDP(client: Destination(network: .udp, address: address, port: port))
        default:
            return refuse(SOCKSMessage.reply(.commandNotSupported))
        }
    }

    /// SOCKS4 and 4a CONNECT: 04 01 DSTPORT DSTIP USERID\0, and for 4a (DSTIP 0.0.0.x, x ≠ 0) a
    /// NUL-terminated host name after the user id.
    private mutating func request4(_ buffer: inout ByteBuffer) -> ClientHandshakeStep {
        let s = buffer.readerIndex
        guard buffer.readableBytes >= 8 else { return .needMore }
        let command = buffer.getInteger(at: s + 1, as: UInt8.self)!
        let port = buffer.getInteger(at: s + 2, as: UInt16.self)!
        let ip = buffer.getBytes(at: s + 4, length: 4)!
        guard let userEnd = nulIndex(buffer, from: s + 8) else {
            return buffer.readableBytes > 8 + 255 ? refuse(SOCKSMessage.reply4(granted: false)) : .needMore
        }
        var end = userEnd + 1
        var address = VMessAddress.ipv4(ip)
        if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
            guard let hostEnd = nulIndex(buffer, from: end) else {
                return buffer.readerIndex + buffer.readableBytes - end > 255 ? refuse(SOCKSMessage.reply4(granted: false)) : .needMore
            }
            let host = buffer.getBytes(at: end, length: hostEnd - end)!
            guard !host.isEmpty, host.count <= 255, case .address(let a, _) = VMessAddress.parse([0x02, UInt8(host.count)] + host)
            else { return refuse(SOCKSMessage.reply4(granted: false)) }
            address = a
            end = hostEnd + 1
        }
        buffer.moveReaderIndex(to: end)
        // SOCKS4 has no authentication, so it is only served where SOCKS5 needs none either.
        guard command == 0x01, settings.auth == .noAuth else { return refuse(SOCKSMessage.reply4(granted: false)) }
        state = .done
        return .connect(ClientRequest(destination: Destination(network: .tcp, address: address, port: port),
                                      reply: SOCKSMessage.reply4(granted: true)))
    }

    /// Index of the first NUL at or after `from`, looking at most 256 bytes ahead.
    private func nulIndex(_ buffer: ByteBuffer, from: Int) -> Int? {
        let end = min(buffer.writerIndex, from + 256)
        guard from < end else { return nil }
        return buffer.withUnsafeReadableBytes { raw -> Int? in
            let base = buffer.readerIndex
            for i in from..<end where raw[i - base] == 0 { return i }
            return nil
        }
    }
}
