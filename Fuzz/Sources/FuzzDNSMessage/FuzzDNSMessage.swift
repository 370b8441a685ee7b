import Foundation
@testable import FuzzSupport
import NIOCore
@testable import Shared

// The DNS response parser (Shared/DNS/DNSResponseParser) on hostile responses, and the cache the
// resolver feeds with what it returns; with selector bit 2, the dns outbound's reader of client
// queries (DNSIncomingQuery) instead. Input: selector byte, then the message.
//   selector bit 0: the question asked is AAAA (else A); bit 1: its name is "a.b" (else www.example.com);
//   bit 2: the bytes are a client's query: whatever parses gets an answer that must read back as the
//   answer to that question (same id, within the client's UDP limit, TC when cut).
// Invariants: parsing never traps and is deterministic; an answer holds at most maximumAddresses
// addresses of the asked type's length; a truncated message is never an answer; a prefix of a
// message parses to the same answer or fails (nothing cut passes as a different whole).

let questions = [
    DNSQuestion("www.example.com", type: .a)!, DNSQuestion("www.example.com", type: .aaaa)!,
    DNSQuestion("a.b", type: .a)!, DNSQuestion("a.b", type: .aaaa)!,
]
var cache = DNSCache(capacity: 16)
var clock: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let question = questions[Int(selector & 3)]
    let bytes = input.rest()
    if selector & 4 != 0 {
        checkIncomingQuery(bytes, addressCount: Int(selector >> 3))
        return 0
    }
    let first = try? DNSResponseParser.parse(ByteBuffer(bytes: bytes), question: question)
    let again = try? DNSResponseParser.parse(ByteBuffer(bytes: bytes), question: question)
    precondition(first == again, "parsing is not deterministic")
    guard case .response(let response)? = first else { return 0 }
    precondition(response.addresses.count <= DNSResponseParser.maximumAddresses, "too many addresses")
    precondition(response.addresses.allSatisfy { $0.count == (question.type == .a ? 4 : 16) }, "address of the wrong length")
    precondition(bytes.count >= 12 && bytes[2] & 0x02 == 0, "a truncated message parsed as an answer")
    // A prefix either fails or reads exactly what the whole message read (the parser never looked
    // past it): the same answer, never a different one made of cut records.
    for cut in [bytes.count - 1, bytes.count / 2, 12] where cut >= 0 && cut < bytes.count {
        if let shorter = try? DNSResponseParser.parse(ByteBuffer(bytes: bytes[..<cut]), question: question) {
            precondition(shorter == first, "a prefix parsed to a different answer")
        }
    }
    clock &+= 1_000_000_000
    cache.insert(DNSCache.Key(server: 0, question: question), addresses: response.addresses, ttl: response.ttl, now: clock)
    precondition(cache.count <= cache.capacity)
    return 0
}

func checkIncomingQuery(_ bytes: [UInt8], addressCount: Int) {
    guard let query = DNSIncomingQuery.parse(ByteBuffer(bytes: bytes)) else { return }
    precondition(query.udpPayloadLimit >= 512 && query.udpPayloadLimit <= 65_535, "payload limit out of range")
    let length = query.question.type == .a ? 4 : 16
    let addresses = (0..<addressCount).map { i in [UInt8](repeating: UInt8(i), count: length) }
    let answer = query.answer(addresses: addresses, rcode: 0, ttl: 600, limit: query.udpPayloadLimit)
    precondition(answer.count <= max(query.udpPayloadLimit, 12 + query.questionSection.count), "answer over the limit")
    switch try? DNSResponseParser.parse(ByteBuffer(bytes: answer), question: query.question) {
    case .response(let response)?:
        precondition(response.id == query.id && response.addresses == addresses, "the answer reads back differently")
    case .truncated(let id)?:
        precondition(id == query.id, "the truncated answer has another id")
    case nil:
        preconditionFailure("the answer does not parse as one to its question")
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        func name(_ text: String) -> [UInt8] {
            text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
        }
        func header(_ flags: UInt16, an: UInt16, ns: UInt16 = 0) -> [UInt8] {
            [0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1, 0, UInt8(an), 0, UInt8(ns), 0, 0]
        }
        let www = name("www.example.com")
        let a: [UInt8] = [0, 1, 0, 1]
        let aaaa: [UInt8] = [0, 28, 0, 1]
        let ttl: [UInt8] = [0, 0, 1, 44]
        let cname = name("cdn.example.net")
        let cnameRecord = [0xC0, 12] + [0, 5, 0, 1] + ttl + [0, UInt8(cname.count)] + cname
        let cnameOffset = UInt8(12 + www.count + 4 + 12)
        let soa = name("ns.example.com") + [0xC0, 16] + Array(repeating: 0, count: 16) + [0, 0, 0, 30]
        return [
            // A, two addresses through a compression pointer.
            [0] + header(0x8180, an: 2) + www + a + [0xC0, 12] + a + ttl + [0, 4, 192, 0, 2, 1]
                + [0xC0, 12] + a + ttl + [0, 4, 192, 0, 2, 2],
            // A through a CNAME chain.
            [0] + header(0x8180, an: 2) + www + a + cnameRecord + [0xC0, cnameOffset] + a + ttl + [0, 4, 198, 51, 100, 7],
            // AAAA.
            [1] + header(0x8180, an: 1) + www + aaaa + [0xC0, 12] + aaaa + ttl + [0, 16, 0x20, 1, 0x0d, 0xb8]
                + Array(repeating: 0, count: 11) + [1],
            // NXDOMAIN with an SOA.
            [2] + header(0x8183, an: 0, ns: 1) + name("a.b") + a + [0xC0, 12] + [0, 6, 0, 1] + ttl
                + [0, UInt8(soa.count)] + soa,
            // Truncated.
            [0] + header(0x8380, an: 1) + www + a + [0xC0, 12] + a + ttl + [0, 4, 192, 0, 2, 1],
            // A pointer loop.
            [0] + header(0x8180, an: 1) + www + a + [0xC0, 33] + a + ttl + [0, 4, 1, 2, 3, 4],
            // Client queries (selector bit 2; the higher bits: how many addresses to answer with).
            [4 | 2 << 3] + [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + www + a,
            [5 | 31 << 3] + [0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1] + www + aaaa + [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0],
            [5 | 31 << 3] + [0x12, 0x37, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + www + aaaa,
            [4] + [0x12, 0x36, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + www + [0, 16, 0, 1],
        ]
    }
    return 0
}
