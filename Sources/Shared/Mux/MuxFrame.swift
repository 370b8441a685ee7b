import NIOCore

/// Mux.Cool frames (vmess-protocol.md §10.2), carried as a byte stream inside one VMess body:
///
///     +-----------+----------------------------------------------+-----------+---------+
///     | BE16(M)   | metadata (M ≤ 512 bytes)                     | BE16(D)   | data    |
///     +-----------+----------------------------------------------+-----------+---------+
///     metadata:  ID(2) status(1) option(1) [New: net(1) port(2) addr] [XUDP: GlobalID(8)]
///     data length and data only when option & 0x01.
public struct MuxFrame: Equatable, Sendable {
    public enum Status: UInt8, Sendable { case new = 1, keep = 2, end = 3, keepAlive = 4 }
    public enum Network: UInt8, Sendable { case tcp = 1, udp = 2 }
    public struct Option: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let data = Option(rawValue: 0x01)
        public static let error = Option(rawValue: 0x02)
    }

    public var sessionID: UInt16
    public var status: Status
    public var option: Option
    /// New frames always; Keep frames of XUDP sessions per packet (destination or source).
    public var network: Network?
    public var port: UInt16 = 0
    public var address: VMessAddress?
    /// XUDP New frames: the client's 8-byte GlobalID (all zero = none).
    public var globalID: [UInt8]?
    public var data: ByteBuffer?

    public init(sessionID: UInt16, status: Status, option: Option = [], network: Network? = nil, port: UInt16 = 0,
                address: VMessAddress? = nil, globalID: [UInt8]? = nil, data: ByteBuffer? = nil) {
        self.sessionID = sessionID
        self.status = status
        self.option = option
        self.network = network
        self.port = port
        self.address = address
        self.globalID = globalID
        self.data = data
    }

    public static let maxMetadata = 512
    /// Largest datagram our Mux *client* sends in one frame: a v2fly/Xray server treats more as fatal
    /// for the whole mux connection (§10.3). Our server and our client's reader take up to 65,535.
    public static let maxUDPData = 2048
    /// Writers slice stream data at 8192 bytes per frame.
    public static let maxStreamSlice = 8192

    public enum ParseError: Error, Equatable {
        case metadataTooLong(Int)
        case metadataTooShort(Int)
        case unknownStatus(UInt8)
        case badAddress
    }

    /// Parses one frame from the front of `buffer` if it is complete; nil = need more bytes (the
    /// buffer is left untouched). The data is a slice of `buffer` (no copy).
    public static func parse(_ buffer: inout ByteBuffer) throws(ParseError) -> MuxFrame? {
        guard let m = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return nil }
        let metaLength = Int(m)
        guard metaLength <= maxMetadata else { throw .metadataTooLong(metaLength) }
        guard metaLength >= 4 else { throw .metadataTooShort(metaLength) }
        guard buffer.readableBytes >= 2 + metaLength else { return nil }
        let base = buffer.readerIndex + 2
        let meta = buffer.getBytes(at: base, length: metaLength)!
        guard let status = Status(rawValue: meta[2]) else { throw .unknownStatus(meta[2]) }
        let option = Option(rawValue: meta[3])
        var dataLength = 0
        var frameLength = 2 + metaLength
        if option.contains(.data) {
            guard let d = buffer.getInteger(at: base + metaLength, as: UInt16.self) else { return nil }
            dataLength = Int(d)
            frameLength += 2 + dataLength
            guard buffer.readableBytes >= frameLength else { return nil }
        }
        var frame = MuxFrame(sessionID: UInt16(meta[0]) << 8 | UInt16(meta[1]), status: status, option: option)
        // New frames (and XUDP Keep frames) carry network, port and address; extra bytes are skipped.
        if (status == .new || status == .keep) && metaLength > 4 {
            guard let net = Network(rawValue: meta[4]), metaLength >= 8 else {
                if status == .new { throw .badAddress }
                return frame.consuming(&buffer, frameLength: frameLength, dataLength: dataLength, metaLength: metaLength)
            }
            frame.network = net
            frame.port = UInt16(meta[5]) << 8 | UInt16(meta[6])
            switch VMessAddress.parse(meta[7...]) {
            case .address(let a, let len):
                frame.address = a
                let after = 7 + len
                if status == .new && net == .udp && metaLength >= after + 8 {
                    frame.globalID = Array(meta[after..<(after + 8)])
                }
            case .invalid, .needMore:
                throw .badAddress
            }
        } else if status == .new {
            throw .badAddress
        }
        return frame.consuming(&buffer, frameLength: frameLength, dataLength: dataLength, metaLength: metaLength)
    }

    private func consuming(_ buffer: inout ByteBuffer, frameLength: Int, dataLength: Int, metaLength: Int) -> MuxFrame {
        var f = self
        if option.contains(.data) {
            f.data = buffer.getSlice(at: buffer.readerIndex + 2 + metaLength + 2, length: dataLength)
        }
        buffer.moveReaderIndex(forwardBy: frameLength)
        return f
    }

    /// Appends the encoded frame to `out`.
    public func write(into out: inout ByteBuffer) {
        var meta: [UInt8] = [UInt8(sessionID >> 8), UInt8(sessionID & 0xFF), status.rawValue]
        var opt = option
        if data != nil { opt.insert(.data) }
        meta.append(opt.rawValue)
        if let network, let address {
            meta.append(network.rawValue)
            meta.append(UInt8(port >> 8))
            meta.append(UInt8(port & 0xFF))
            address.encode(into: &meta)
            if let globalID { meta += globalID }
        }
        out.writeInteger(UInt16(meta.count))
        out.writeBytes(meta)
        if var d = data {
            out.writeInteger(UInt16(d.readableBytes))
            out.writeBuffer(&d)
        }
    }
}
