// DNS messages as vmessd's resolver sends and reads them (RFC 1035 §4; RFC 3596 for AAAA). Queries
// carry one question and no EDNS0; responses are read by DNSResponseParser.
//
//    0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                      ID                       |
//   |QR|  Opcode   |AA|TC|RD|RA|   Z    |   RCODE   |
//   |                    QDCOUNT                    |
//   |                    ANCOUNT                    |
//   |                    NSCOUNT                    |
//   |                    ARCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   question: QNAME (labels, 0-terminated) QTYPE QCLASS
//   records:  NAME TYPE CLASS TTL(32) RDLENGTH RDATA

/// Record types the resolver asks for or follows; raw values are the wire values.
public enum DNSRecordType: UInt16, Sendable {
    case a = 1
    case cname = 5
    case soa = 6
    case aaaa = 28

    /// Address length of an A or AAAA record.
    var addressLength: Int? {
        switch self {
        case .a: 4
        case .aaaa: 16
        default: nil
        }
    }
}

/// One question: a normalised name (lower-case ASCII letters, no trailing dot, labels of 1-63
/// bytes, at most 253 bytes) and A or AAAA.
public struct DNSQuestion: Hashable, Sendable {
    public let name: [UInt8]
    public let type: DNSRecordType

    /// nil when `name` cannot be a DNS name (empty label, label over 63 bytes, over 253 bytes).
    public init?(name: [UInt8], type: DNSRecordType) {
        guard let normalised = Self.normalise(name) else { return nil }
        self.name = normalised
        self.type = type
    }

    public init?(_ name: String, type: DNSRecordType) {
        self.init(name: Array(name.utf8), type: type)
    }

    /// Lower-cases ASCII letters and drops one trailing dot; checks the RFC 1035 §2.3.4 lengths.
    /// Other bytes pass unchanged: a label may hold any octet (RFC 2181 §11).
    public static func normalise(_ name: [UInt8]) -> [UInt8]? {
        var bytes = name
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.count <= maximumNameLength else { return nil }
        var labelLength = 0
        for i in bytes.indices {
            if bytes[i] == UInt8(ascii: ".") {
                guard labelLength > 0 else { return nil }
                labelLength = 0
            } else {
                labelLength += 1
                guard labelLength <= maximumLabelLength else { return nil }
                if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[i]) { bytes[i] |= 0x20 }
            }
        }
        return labelLength > 0 ? bytes : nil
    }

    /// 255 bytes on the wire (RFC 1035 §3.1) is 253 in dotted text without the root dot.
    public static let maximumNameLength = 253
    public static let maximumLabelLength = 63

    /// The query message: header with RD set, this question, class IN.
    public func query(id: UInt16) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + name.count + 2 + 4)
        out += [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        appendSection(to: &out)
        return out
    }

    /// The question section: the name as labels (no compression), type, class IN.
    func appendSection(to out: inout [UInt8]) {
        var start = 0
        for i in 0...name.count where i == name.count || name[i] == UInt8(ascii: ".") {
            out.append(UInt8(i - start))
            out += name[start..<i]
            start = i + 1
        }
        out.append(0)
        out += [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, DNSResponse.classIN]
    }
}

/// What a response says about one question.
public struct DNSResponse: Equatable, Sendable {
    public enum RCode: Equatable, Sendable {
        case noError, formatError, serverFailure, nameError, notImplemented, refused
        case other(UInt8)
        init(_ raw: UInt8) {
            switch raw {
            case 0: self = .noError
            case 1: self = .formatError
            case 2: self = .serverFailure
            case 3: self = .nameError
            case 4: self = .notImplemented
            case 5: self = .refused
            default: self = .other(raw)
            }
        }

        /// The 4-bit wire value.
        public var wireValue: UInt8 {
            switch self {
            case .noError: 0
            case .formatError: 1
            case .serverFailure: 2
            case .nameError: 3
            case .notImplemented: 4
            case .refused: 5
            case .other(let raw): raw & 0xF
            }
        }
    }

    public var id: UInt16
    public var rcode: RCode
    /// Addresses of the question's type reached from its name (directly or through the CNAME chain),
    /// 4 or 16 bytes each, in answer order, at most `DNSResponseParser.maximumAddresses`.
    public var addresses: [[UInt8]]
    /// How long this answer may be cached, in seconds: the smallest TTL of the records used; for an
    /// answer without addresses, the negative-caching TTL of the authority SOA (RFC 2308 §5), or 0.
    public var ttl: UInt32

    public init(id: UInt16, rcode: RCode, addresses: [[UInt8]], ttl: UInt32) {
        self.id = id
        self.rcode = rcode
        self.addresses = addresses
        self.ttl = ttl
    }

    static let classIN: UInt8 = 1
}
