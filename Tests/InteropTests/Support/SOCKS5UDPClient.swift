// A minimal SOCKS5 client for UDP ASSOCIATE (RFC 1928), used to push datagrams through the v2ray
// client's socks inbound. The association lives as long as its TCP control connection.
//
//   greeting  05 01 00                  -> 05 00
//   request   05 03 00 01 <ip4> <port>  -> 05 00 00 ATYP BND.ADDR BND.PORT
//   datagram  00 00 00(FRAG) ATYP DST.ADDR DST.PORT DATA   (both directions)

import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

final class SOCKS5UDPAssociation {
    private let controlFD: Int32
    private let udpFD: Int32
    /// Where the proxy relays our datagrams (the BND address of the reply).
    let relayPort: UInt16
    private var closed = false

    init(socksPort: UInt16, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        controlFD = try Sock.connect(port: socksPort)
        Sock.setTimeouts(controlFD, seconds: 0.25)
        do {
            udpFD = try Sock.socket(Sock.datagramType)
        } catch {
            Glibc.close(controlFD)
            throw error
        }
        do {
            try Sock.bind(udpFD, port: 0)
            let ourPort = try Sock.localPort(udpFD)

            try Sock.writeAll(controlFD, Data([0x05, 0x01, 0x00]), deadline: deadline, what: "socks greeting")
            let method = try Sock.read(controlFD, count: 2, deadline: deadline, what: "socks method reply")
            guard method.data == Data([0x05, 0x00]) else {
                throw SocketError.unexpected("socks: method reply \(Array(method.data)) (wanted 05 00)")
            }
            var request = Data([0x05, 0x03, 0x00, 0x01, 127, 0, 0, 1])
            request.append(UInt8(ourPort >> 8)); request.append(UInt8(ourPort & 0xFF))
            try Sock.writeAll(controlFD, request, deadline: deadline, what: "socks UDP ASSOCIATE")
            let head = try Sock.read(controlFD, count: 4, deadline: deadline, what: "socks reply")
            guard head.data.count == 4, head.data[0] == 0x05 else {
                throw SocketError.unexpected("socks: bad reply head \(Array(head.data))")
            }
            guard head.data[1] == 0x00 else {
                throw SocketError.unexpected("socks: UDP ASSOCIATE refused, REP=\(head.data[1])")
            }
            let addrLen: Int
            switch head.data[3] {
            case 0x01: addrLen = 4
            case 0x04: addrLen = 16
            case 0x03:
                let l = try Sock.read(controlFD, count: 1, deadline: deadline, what: "socks reply domain length")
                addrLen = Int(l.data.first ?? 0)
            default: throw SocketError.unexpected("socks: reply ATYP \(head.data[3])")
            }
            let rest = try Sock.read(controlFD, count: addrLen + 2, deadline: deadline, what: "socks reply address")
            guard rest.data.count == addrLen + 2 else { throw SocketError.unexpected("socks: short reply") }
            let p = rest.data.suffix(2)
            // The harness only ever talks to loopback; a 0.0.0.0 BND address also means "same host".
            relayPort = UInt16(p[p.startIndex]) << 8 | UInt16(p[p.startIndex + 1])
            Sock.setTimeouts(udpFD, seconds: 0.1)
        } catch {
            Glibc.close(controlFD)
            Glibc.close(udpFD)
            throw error
        }
    }

    deinit { close() }

    func close() {
        if closed { return }
        closed = true
        Glibc.close(udpFD)
        Glibc.close(controlFD)
    }

    /// Sends `payload` for 127.0.0.1:`targetPort` through the relay.
    func send(_ payload: Data, toPort targetPort: UInt16) throws {
        var packet = Data([0x00, 0x00, 0x00, 0x01, 127, 0, 0, 1, UInt8(targetPort >> 8), UInt8(targetPort & 0xFF)])
        packet.append(payload)
        var relay = Sock.loopback(port: relayPort)
        let n = packet.withUnsafeBytes { buf in
            withUnsafePointer(to: &relay) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(udpFD, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if n != packet.count { throw SocketError.call("sendto(relay 127.0.0.1:\(relayPort))", errno) }
    }

    /// Next datagram with its SOCKS header stripped, or nil if none arrives within `timeout`.
    func receive(timeout: TimeInterval) throws -> (payload: Data, fromPort: UInt16)? {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(udpFD, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                throw SocketError.call("recv(udp)", errno)
            }
            guard n >= 4, buffer[0] == 0, buffer[1] == 0 else {
                throw SocketError.unexpected("socks UDP: malformed header in a \(n)-byte datagram")
            }
            guard buffer[2] == 0 else { throw SocketError.unexpected("socks UDP: fragment \(buffer[2]) not supported") }
            var offset: Int
            switch buffer[3] {
            case 0x01: offset = 4 + 4
            case 0x04: offset = 4 + 16
            case 0x03: offset = 4 + 1 + Int(buffer[4])
            default: throw SocketError.unexpected("socks UDP: ATYP \(buffer[3])")
            }
            guard n >= offset + 2 else { throw SocketError.unexpected("socks UDP: truncated header") }
            let port = UInt16(buffer[offset]) << 8 | UInt16(buffer[offset + 1])
            offset += 2
            return (Data(buffer[offset..<n]), port)
        }
        return nil
    }
}
