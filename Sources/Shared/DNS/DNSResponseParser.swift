import NIOCore

// Reads one DNS response (RFC 1035 §4.1) for a question vmessd asked. Everything in it comes from
// the network and may be hostile: each count, length and compression pointer is checked against the
// message before use, and a malformed message is an error, never a partial answer.
//
// - Names: labels of at most 63 bytes, at most 255 bytes on the wire; a compression pointer must point
//   before the start of the run of labels it ends (so every jump goes strictly backwards and a loop is
//   impossible) and at most `maximumJumps` are followed; label types 01/10 (RFC 6891 §5 extended,
//   obsolete) are errors.
// - Sections: the question must echo the one asked (name case-insensitively, type, class IN); counts
//   cannot claim more records than the bytes could hold (11 bytes is the smallest record).
// - Answers: the question's name and the CNAME chain from it, in order (as resolvers emit it and Go's
//   resolver reads it), at most `maximumChain` links; addresses of the asked type on a name of the
//   chain, RDLENGTH exactly 4 or 16; other records are skipped by their RDLENGTH.
// - TC set: the answer is cut (RFC 1035 §4.2.1); it is reported as `truncated`, with no records, so
//   nothing cut is ever used as whole (the resolver asks again over TCP).

public enum DNSReply: Equatable, Sendable {
    case response(DNSResponse)
    /// TC was set: ask again over TCP.
    case truncated(id: UInt16)
}

public struct DNSWireError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        case short, notAResponse, opcode, questionCount, questionMismatch, countExceedsMessage
        case labelType, labelTooLong, nameTooLong, badPointer, tooManyJumps, recordLength
    }

    public let kind: Kind
    /// Offset in the message where the problem was found.
    public let offset: Int
    public var description: String { "DNS response: \(kind) at \(offset)" }
}

public enum DNSResponseParser {
    /// Addresses kept from one answer; more are dropped (a name with hundreds of A records is an
    /// attack on the cache, not a service).
    public static let maximumAddresses = 64
    public static let maximumChain = 16
    static let maximumJumps = 32
    static let minimumRecordLength = 11

    /// Parses `message` (its readable bytes) as the response to `question`.
    public static func parse(_ message: ByteBuffer, question: DNSQuestion) throws -> DNSReply {
        var reader = Reader(message)
        let id = try reader.u16(0)
        let flags = try reader.u16(2)
        guard flags & 0x8000 != 0 else { throw DNSWireError(kind: .notAResponse, offset: 2) }
        guard (flags >> 11) & 0xF == 0 else { throw DNSWireError(kind: .opcode, offset: 2) }
        let questions = try reader.u16(4)
        let answers = Int(try reader.u16(6))
        let authorities = Int(try reader.u16(8))
        guard questions == 1 else { throw DNSWireError(kind: .questionCount, offset: 4) }

        var position = 12
        let (qname, afterName) = try reader.name(at: position)
        let qtype = try reader.u16(afterName)
        let qclass = try reader.u16(afterName + 2)
        guard qname == question.name, qtype == question.type.rawValue, qclass == UInt16(DNSResponse.classIN) else {
            throw DNSWireError(kind: .questionMismatch, offset: position)
        }
        position = afterName + 4
        if flags & 0x0200 != 0 { return .truncated(id: id) }

        var response = DNSResponse(id: id, rcode: .init(UInt8(flags & 0xF)), addresses: [], ttl: .max)
        try reader.checkCount(answers, from: position)
        var current = question.name
        var links = 0
        for _ in 0..<answers {
            let record = try reader.record(at: position)
            position = record.end
            guard record.class == UInt16(DNSResponse.classIN), record.owner == current else { continue }
            if record.type == DNSRecordType.cname.rawValue {
                guard links < maximumChain else { continue }
                let (target, end) = try reader.name(at: record.dataStart)
                guard end == record.end else { throw DNSWireError(kind: .recordLength, offset: record.dataStart) }
                links += 1
                current = target
                response.ttl = min(response.ttl, record.ttl)
            } else if record.type == question.type.rawValue {
                guard record.end - record.dataStart == question.type.addressLength else {
                    throw DNSWireError(kind: .recordLength, offset: record.dataStart)
                }
                guard response.addresses.count < maximumAddresses else { continue }
                response.addresses.append(try reader.bytes(record.dataStart, question.type.addressLength ?? 0))
                response.ttl = min(response.ttl, record.ttl)
            }
        }
        if response.addresses.isEmpty {
            response.ttl = try negativeTTL(&reader, authorities, from: position, rcode: response.rcode)
        }
        return .response(response)
    }

    /// RFC 2308 §5: a "no such name" or "no data" answer is cached for min(SOA TTL, SOA MINIMUM) of the
    /// authority section's SOA; without one, or for any other failure, it is not cached.
    static func negativeTTL(_ reader: inout Reader, _ count: Int, from start: Int, rcode: DNSResponse.RCode) throws -> UInt32 {
        guard rcode == .noError || rcode == .nameError else { return 0 }
        try reader.checkCount(count, from: start)
        var position = start
        for _ in 0..<count {
            let record = try reader.record(at: position)
            position = record.end
            guard record.type == DNSRecordType.soa.rawValue, record.class == UInt16(DNSResponse.classIN) else { continue }
            let (_, afterMName) = try reader.name(at: record.dataStart)
            let (_, afterRName) = try reader.name(at: afterMName)
            guard afterRName + 20 == record.end else { throw DNSWireError(kind: .recordLength, offset: record.dataStart) }
            return min(record.ttl, Reader.ttl(try reader.u32(afterRName + 16)))
        }
        return 0
    }

    /// Checked reads over the message's readable bytes; offsets are from the message start.
    struct Reader {
        let buffer: ByteBuffer
        let count: Int

        init(_ buffer: ByteBuffer) {
            self.buffer = buffer
            count = buffer.readableBytes
        }

        func u8(_ offset: Int) throws -> UInt8 {
            guard offset >= 0, offset < count,
                  let v = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt8.self) else { throw DNSWireError(kind: .short, offset: offset) }
            return v
        }

        func u16(_ offset: Int) throws -> UInt16 {
            guard offset >= 0, offset <= count - 2,
                  let v = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt16.self) else { throw DNSWireError(kind: .short, offset: offset) }
            return v
        }

        func u32(_ offset: Int) throws -> UInt32 {
            guard offset >= 0, offset <= count - 4,
                  let v = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt32.self) else { throw DNSWireError(kind: .short, offset: offset) }
            return v
        }

        func bytes(_ offset: Int, _ length: Int) throws -> [UInt8] {
            guard offset >= 0, length >= 0, offset <= count - length,
                  let v = buffer.getBytes(at: buffer.readerIndex + offset, length: length) else { throw DNSWireError(kind: .short, offset: offset) }
            return v
        }

        /// A section of `records` records cannot start at `start` if the bytes left cannot hold them.
        func checkCount(_ records: Int, from start: Int) throws {
            guard records <= (count - start) / DNSResponseParser.minimumRecordLength else {
                throw DNSWireError(kind: .countExceedsMessage, offset: start)
            }
        }

        /// RFC 2181 §8: a TTL with the top bit set is treated as zero.
        static func ttl(_ raw: UInt32) -> UInt32 { raw & 0x8000_0000 != 0 ? 0 : raw }

        /// The name at `offset`, dotted and lower-cased (no trailing dot; the root is empty), and the
        /// offset just after it where it was written (after its first pointer, if any).
        func name(at offset: Int) throws -> (name: [UInt8], end: Int) {
            var out: [UInt8] = []
            var position = offset
            var runStart = offset
            var end: Int?
            var wireLength = 1
            var jumps = 0
            while true {
                let length = try u8(position)
                switch length & 0xC0 {
                case 0xC0:
                    let target = Int(length & 0x3F) << 8 | Int(try u8(position + 1))
                    guard target < runStart else { throw DNSWireError(kind: .badPointer, offset: position) }
                    jumps += 1
                    guard jumps <= DNSResponseParser.maximumJumps else { throw DNSWireError(kind: .tooManyJumps, offset: position) }
                    if end == nil { end = position + 2 }
                    position = target
                    runStart = target
                case 0:
                    if length == 0 { return (out, end ?? position + 1) }
                    let labelLength = Int(length)
                    wireLength += labelLength + 1
                    guard wireLength <= 255 else { throw DNSWireError(kind: .nameTooLong, offset: position) }
                    guard position + 1 <= count - labelLength else { throw DNSWireError(kind: .short, offset: position) }
                    if !out.isEmpty { out.append(UInt8(ascii: ".")) }
                    let start = buffer.readerIndex + position + 1
                    for i in start..<(start + labelLength) {
                        guard var byte = buffer.getInteger(at: i, as: UInt8.self) else { throw DNSWireError(kind: .short, offset: position) }
                        if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) { byte |= 0x20 }
                        out.append(byte)
                    }
                    position += 1 + labelLength
                default:
                    throw DNSWireError(kind: .labelType, offset: position)
                }
            }
        }

        struct Record {
            var owner: [UInt8]
            var type: UInt16
            var `class`: UInt16
            var ttl: UInt32
            var dataStart: Int
            var end: Int
        }

        func record(at offset: Int) throws -> Record {
            let (owner, afterName) = try name(at: offset)
            let type = try u16(afterName)
            let klass = try u16(afterName + 2)
            let ttl = Self.ttl(try u32(afterName + 4))
            let length = Int(try u16(afterName + 8))
            let dataStart = afterName + 10
            guard dataStart <= count - length else { throw DNSWireError(kind: .recordLength, offset: afterName + 8) }
            return Record(owner: owner, type: type, class: klass, ttl: ttl, dataStart: dataStart, end: dataStart + length)
        }
    }
}
