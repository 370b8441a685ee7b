import NIOCore

// A query a client sent to the `dns` outbound (RFC 1035 §4.1), and the answer vmessd gives it when
// the built-in resolver handles it. Only a plain question is answered here: QR=0, opcode QUERY, one
// question of class IN and type A or AAAA; anything else (other types, several questions, inverse
// queries, a message vmessd cannot read) is forwarded untouched, as V2Ray's dns outbound does.
//
// The answer echoes the question section byte for byte (the client compares it with what it sent;
// a compressed name is written out in full instead),
// keeps the id and RD, sets QR and RA, and carries one record per address, each naming the question
// by a pointer to offset 12:
//
//   header | question as sent | (C0 0C, TYPE, IN, TTL, RDLENGTH 4|16, address)*

public struct DNSIncomingQuery: Equatable, Sendable {
    public let id: UInt16
    public let recursionDesired: Bool
    public let question: DNSQuestion
    /// The question section as sent (name, type, class).
    public let questionSection: [UInt8]
    /// The largest UDP answer the client takes: 512 bytes (RFC 1035 §4.2.1), or the payload size of
    /// its EDNS0 OPT record when larger (RFC 6891 §6.2.5).
    public let udpPayloadLimit: Int

    /// The query, or nil when it is not one the resolver answers (then it is forwarded).
    public static func parse(_ message: ByteBuffer) -> DNSIncomingQuery? {
        let reader = DNSResponseParser.Reader(message)
        guard let id = try? reader.u16(0), let flags = try? reader.u16(2), let questions = try? reader.u16(4),
              flags & 0x8000 == 0, (flags >> 11) & 0xF == 0, questions == 1,
              let (name, end) = try? reader.name(at: 12), let type = try? reader.u16(end), let klass = try? reader.u16(end + 2),
              klass == UInt16(DNSResponse.classIN),
              let recordType = DNSRecordType(rawValue: type), recordType.addressLength != nil,
              let question = DNSQuestion(name: name, type: recordType),
              let sent = try? reader.bytes(12, end + 4 - 12)
        else { return nil }
        // Echoed as sent (the client may compare letter case), unless the name was compressed: a
        // pointer in it would point into the answer's own header. Then it is written out in full.
        // (Only an uncompressed name takes exactly its dotted length + 2 bytes: a final pointer
        // replaces at least 3 bytes by 2, or a 1-byte root by 2.)
        var section = sent
        if sent.count != question.name.count + 2 + 4 {
            section = []
            question.appendSection(to: &section)
        }
        return DNSIncomingQuery(id: id, recursionDesired: flags & 0x0100 != 0, question: question, questionSection: section,
                                udpPayloadLimit: ednsPayloadSize(reader, after: end + 4) ?? 512)
    }

    /// The OPT record's CLASS (the requestor's UDP payload size) among the records after the question,
    /// if there is one and it is above 512; a malformed tail is as if there were none.
    static func ednsPayloadSize(_ reader: DNSResponseParser.Reader, after start: Int) -> Int? {
        guard let answers = try? reader.u16(6), let authorities = try? reader.u16(8), let additional = try? reader.u16(10) else { return nil }
        let records = Int(answers) + Int(authorities) + Int(additional)
        guard (try? reader.checkCount(records, from: start)) != nil else { return nil }
        var position = start
        for _ in 0..<records {
            guard let record = try? reader.record(at: position) else { return nil }
            position = record.end
            if record.type == optType, record.owner.isEmpty { return record.class > 512 ? Int(record.class) : nil }
        }
        return nil
    }

    static let optType: UInt16 = 41

    /// The answer message. `rcode`: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN…; addresses of another length
    /// than the question's type are left out. `limit`: the most bytes it may take (a UDP answer:
    /// `udpPayloadLimit`); records that do not fit are left out and TC is set, so the client asks again
    /// over TCP (RFC 2181 §9).
    public func answer(addresses: [[UInt8]], rcode: UInt8, ttl: UInt32, limit: Int = 65_535) -> [UInt8] {
        let length = question.type.addressLength ?? 0
        var records = addresses.filter { $0.count == length }.prefix(DNSResponseParser.maximumAddresses)
        let fitting = max(0, (limit - 12 - questionSection.count) / (12 + length))
        let truncated = records.count > fitting
        if truncated { records = records.prefix(fitting) }
        var out: [UInt8] = []
        out.reserveCapacity(12 + questionSection.count + records.count * (12 + length))
        let flags: UInt16 = 0x8080 | (truncated ? 0x0200 : 0) | (recursionDesired ? 0x0100 : 0) | UInt16(rcode & 0xF)
        out += [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1,
                0, UInt8(records.count), 0, 0, 0, 0]
        out += questionSection
        let type = question.type.rawValue
        for address in records {
            out += [0xC0, 12, UInt8(type >> 8), UInt8(type & 0xFF), 0, DNSResponse.classIN,
                    UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF),
                    0, UInt8(length)]
            out += address
        }
        return out
    }
}
