/// The VMess command section (vmess-protocol.md §6), identical under the AEAD and legacy headers:
///
///     0      1        17        33  34    35        36   37   38     40    41        …    …
///     +------+--------+---------+---+-----+---------+----+----+------+-----+---------+----+---------+
///     | ver  | reqIV  | reqKey  | V | opt | P<<4|Sec| 00 |cmd | port | typ | address | pad| FNV1a32 |
///     +------+--------+---------+---+-----+---------+----+----+------+-----+---------+----+---------+
///     port/type/address are absent for command 3 (Mux).

public enum Security: UInt8, Sendable, CaseIterable {
    case unknown = 0, legacy = 1, auto = 2, aes128GCM = 3, chacha20Poly1305 = 4, none = 5, zero = 6
}

public enum RequestCommand: UInt8, Sendable {
    case tcp = 1, udp = 2, mux = 3
}

public struct RequestOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let chunkStream = RequestOptions(rawValue: 0x01)
    public static let connectionReuse = RequestOptions(rawValue: 0x02)
    public static let chunkMasking = RequestOptions(rawValue: 0x04)
    public static let globalPadding = RequestOptions(rawValue: 0x08)
    public static let authenticatedLength = RequestOptions(rawValue: 0x10)
}

public struct RequestHeader: Equatable, Sendable {
    public var version: UInt8 = 1
    public var requestIV: [UInt8]
    public var requestKey: [UInt8]
    public var responseAuth: UInt8
    public var options: RequestOptions
    /// Raw low nibble of byte 35: kept raw so that unknown codes can be classified.
    public var securityCode: UInt8
    public var command: UInt8
    public var port: UInt16
    public var address: VMessAddress?
    /// Header padding P (0…15) and its bytes (random when encoding; zeros in the test vectors).
    public var padding: [UInt8]

    public init(requestIV: [UInt8], requestKey: [UInt8], responseAuth: UInt8, options: RequestOptions,
                security: Security, command: RequestCommand, port: UInt16, address: VMessAddress?,
                padding: [UInt8] = []) {
        precondition(requestIV.count == 16 && requestKey.count == 16 && padding.count <= 15)
        self.requestIV = requestIV
        self.requestKey = requestKey
        self.responseAuth = responseAuth
        self.options = options
        self.securityCode = security.rawValue
        self.command = command.rawValue
        self.port = port
        self.address = address
        self.padding = padding
    }

    public var security: Security? { Security(rawValue: securityCode) }
    public var requestCommand: RequestCommand? { RequestCommand(rawValue: command) }

    /// Plain command section including the FNV checksum.
    public func encodeCommandSection() -> [UInt8] {
        var out: [UInt8] = [version]
        out.reserveCapacity(64 + (address?.encodedLength ?? 0))
        out += requestIV
        out += requestKey
        out.append(responseAuth)
        out.append(options.rawValue)
        out.append(UInt8(padding.count) << 4 | (securityCode & 0x0F))
        out.append(0)
        out.append(command)
        if command != RequestCommand.mux.rawValue, let address {
            out.append(UInt8(port >> 8))
            out.append(UInt8(port & 0xFF))
            address.encode(into: &out)
        }
        out += padding
        let f = Checksum.fnv1a32(out)
        out += [UInt8(f >> 24), UInt8(f >> 16 & 0xFF), UInt8(f >> 8 & 0xFF), UInt8(f & 0xFF)]
        return out
    }

    public enum ParseError: Error, Equatable {
        case tooShort
        case badChecksum
        case invalidAddress
        case unknownCommand(UInt8)
    }

    public enum LengthProbe: Equatable {
        case needAtLeast(Int)
        case total(Int)
        case invalid(ParseError)
    }

    /// How long the whole section is, from as much of its plaintext as is known. The legacy header has
    /// no length field, so the server decrypts and asks this until it knows.
    public static func probeLength(_ plain: ArraySlice<UInt8>) -> LengthProbe {
        guard plain.count >= 38 else { return .needAtLeast(38) }
        let s = plain.startIndex
        let p = Int(plain[s + 35] >> 4)
        let cmd = plain[s + 37]
        var addressLength = 0
        if cmd == RequestCommand.tcp.rawValue || cmd == RequestCommand.udp.rawValue {
            guard plain.count >= 41 else { return .needAtLeast(41) }
            switch plain[s + 40] {
            case 1: addressLength = 2 + 5
            case 3: addressLength = 2 + 17
            case 2:
                guard plain.count >= 42 else { return .needAtLeast(42) }
                let n = Int(plain[s + 41])
                if n == 0 { return .invalid(.invalidAddress) }
                addressLength = 2 + 2 + n
            default: return .invalid(.invalidAddress)
            }
        } else if cmd != RequestCommand.mux.rawValue {
            return .invalid(.unknownCommand(cmd))
        }
        return .total(38 + addressLength + p + 4)
    }

    /// Parses a complete plain command section (bytes after its checksum are ignored, as the reference does).
    public static func parse(_ plain: ArraySlice<UInt8>) throws(ParseError) -> RequestHeader {
        let total: Int
        switch probeLength(plain) {
        case .needAtLeast: throw .tooShort
        case .invalid(let e): throw e
        case .total(let n): total = n
        }
        guard plain.count >= total else { throw .tooShort }
        let s = plain.startIndex
        let body = plain[s..<(s + total - 4)]
        let expected = UInt32(plain[s + total - 4]) << 24 | UInt32(plain[s + total - 3]) << 16
            | UInt32(plain[s + total - 2]) << 8 | UInt32(plain[s + total - 1])
        guard Checksum.fnv1a32(body) == expected else { throw .badChecksum }
        let cmd = plain[s + 37]
        var port: UInt16 = 0
        var address: VMessAddress? = nil
        var cursor = s + 38
        if cmd != RequestCommand.mux.rawValue {
            port = UInt16(plain[s + 38]) << 8 | UInt16(plain[s + 39])
            switch VMessAddress.parse(plain[(s + 40)..<(s + total - 4)]) {
            case .address(let a, let len):
                address = a
                cursor = s + 40 + len
            case .needMore, .invalid: throw .invalidAddress
            }
        } else {
            address = .domain("v1.mux.cool")
        }
        let p = Int(plain[s + 35] >> 4)
        var h = RequestHeader(requestIV: Array(plain[(s + 1)..<(s + 17)]), requestKey: Array(plain[(s + 17)..<(s + 33)]),
                              responseAuth: plain[s + 33], options: RequestOptions(rawValue: plain[s + 34]),
                              security: .unknown, command: .tcp, port: port, address: address,
                              padding: Array(plain[cursor..<(cursor + p)]))
        h.version = plain[s]
        h.securityCode = plain[s + 35] & 0x0F
        h.command = cmd
        return h
    }
}
