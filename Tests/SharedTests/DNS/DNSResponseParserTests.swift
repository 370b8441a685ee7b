// The response parser on well-formed answers and on hostile ones: every malformed message must be
// an error (never a trap, never a partial answer), every prefix of a good message too.

import NIOCore
import XCTest

@testable import Shared

final class DNSResponseParserTests: XCTestCase {
    private let question = DNSQuestion("www.example.com", type: .a)!

    private func parse(_ bytes: [UInt8], _ q: DNSQuestion? = nil) throws -> DNSReply {
        try DNSResponseParser.parse(ByteBuffer(bytes: bytes), question: q ?? question)
    }

    private func response(_ bytes: [UInt8], _ q: DNSQuestion? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> DNSResponse {
        guard case .response(let r) = try parse(bytes, q) else {
            XCTFail("expected a response", file: file, line: line)
            throw DNSWireError(kind: .short, offset: 0)
        }
        return r
    }

    private func assertWireError(_ bytes: [UInt8], _ kind: DNSWireError.Kind, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(bytes), file: file, line: line) { error in
            XCTAssertEqual((error as? DNSWireError)?.kind, kind, "\(error)", file: file, line: line)
        }
    }

    func testQueryEncoding() {
        let q = DNSQuestion("WWW.Example.COM.", type: .aaaa)!
        XCTAssertEqual(q.name, Array("www.example.com".utf8))
        XCTAssertEqual(q.query(id: 0xBEEF),
                       [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                        3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 3, 0x63, 0x6F, 0x6D, 0,
                        0, 28, 0, 1])
    }

    func testQuestionNameLimits() {
        XCTAssertNil(DNSQuestion("", type: .a))
        XCTAssertNil(DNSQuestion(".", type: .a))
        XCTAssertNil(DNSQuestion("a..b", type: .a))
        XCTAssertNil(DNSQuestion(".a", type: .a))
        XCTAssertNil(DNSQuestion(String(repeating: "x", count: 64) + ".com", type: .a))
        XCTAssertNotNil(DNSQuestion(String(repeating: "x", count: 63) + ".com", type: .a))
        let long = Array(repeating: String(repeating: "y", count: 49), count: 5).joined(separator: ".")  // 249
        XCTAssertNotNil(DNSQuestion(long + ".abc", type: .a))  // 253
        XCTAssertNil(DNSQuestion(long + ".abcd", type: .a))  // 254
    }

    func testAnswerWithCompressionAndTTL() throws {
        var m = DNSMessageBuilder(an: 2)
        m.record(type: 1, ttl: 300, data: [192, 0, 2, 1])
        m.record(type: 1, ttl: 60, data: [192, 0, 2, 2])
        let r = try response(m.bytes)
        XCTAssertEqual(r.id, 0x1234)
        XCTAssertEqual(r.rcode, .noError)
        XCTAssertEqual(r.addresses, [[192, 0, 2, 1], [192, 0, 2, 2]])
        XCTAssertEqual(r.ttl, 60)
    }

    func testQuestionEchoIsCaseInsensitive() throws {
        var m = DNSMessageBuilder(an: 1, question: "WwW.ExAmPlE.cOm")
        m.record(type: 1, data: [192, 0, 2, 1])
        XCTAssertEqual(try response(m.bytes).addresses, [[192, 0, 2, 1]])
    }

    func testCNAMEChainIsFollowedAndOtherOwnersIgnored() throws {
        var m = DNSMessageBuilder(an: 4)
        // www.example.com CNAME cdn.example.net; a record for an unrelated name; cdn.example.net A.
        let target = DNSMessageBuilder.name("cdn.example.net")
        let targetOffset = m.bytes.count + 12  // owner pointer (2) + type/class/ttl/len (10)
        m.record(type: 5, ttl: 100, data: target)
        m.record(owner: DNSMessageBuilder.name("evil.example"), type: 1, ttl: 5, data: [6, 6, 6, 6])
        m.record(owner: [0xC0, UInt8(targetOffset)], type: 1, ttl: 200, data: [198, 51, 100, 7])
        m.record(type: 28, data: Array(repeating: 1, count: 16))  // AAAA for an A question: skipped
        let r = try response(m.bytes)
        XCTAssertEqual(r.addresses, [[198, 51, 100, 7]])
        XCTAssertEqual(r.ttl, 100)
    }

    func testAAAA() throws {
        var m = DNSMessageBuilder(an: 1, type: 28)
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        m.record(type: 28, data: v6)
        XCTAssertEqual(try response(m.bytes, DNSQuestion("www.example.com", type: .aaaa)).addresses, [v6])
    }

    func testNegativeAnswerUsesSOAMinimum() throws {
        var m = DNSMessageBuilder(flags: 0x8183, an: 0, ns: 1)
        let soa = DNSMessageBuilder.name("ns.example.com") + DNSMessageBuilder.name("admin.example.com")
            + DNSMessageBuilder.u32(1) + DNSMessageBuilder.u32(2) + DNSMessageBuilder.u32(3) + DNSMessageBuilder.u32(4)
            + DNSMessageBuilder.u32(30)
        m.record(owner: DNSMessageBuilder.name("example.com"), type: 6, ttl: 900, data: soa)
        let r = try response(m.bytes)
        XCTAssertEqual(r.rcode, .nameError)
        XCTAssertEqual(r.addresses, [])
        XCTAssertEqual(r.ttl, 30)
        // Without an SOA a negative answer is not cached; SERVFAIL never is.
        XCTAssertEqual(try response(DNSMessageBuilder(flags: 0x8183, an: 0).bytes).ttl, 0)
        var fail = DNSMessageBuilder(flags: 0x8182, an: 0, ns: 1)
        fail.record(owner: DNSMessageBuilder.name("example.com"), type: 6, ttl: 900, data: soa)
        XCTAssertEqual(try response(fail.bytes).rcode, .serverFailure)
        XCTAssertEqual(try response(fail.bytes).ttl, 0)
    }

    func testTruncatedAnswerCarriesNoRecords() throws {
        var m = DNSMessageBuilder(flags: 0x8380, an: 1)
        m.record(type: 1, data: [192, 0, 2, 1])
        XCTAssertEqual(try parse(m.bytes), .truncated(id: 0x1234))
        // Even cut in the middle of its answer.
        XCTAssertEqual(try parse(Array(m.bytes.dropLast(3))), .truncated(id: 0x1234))
    }

    func testTTLWithTopBitIsZero() throws {
        var m = DNSMessageBuilder(an: 1)
        m.record(type: 1, ttl: 0x8000_0001, data: [192, 0, 2, 1])
        XCTAssertEqual(try response(m.bytes).ttl, 0)
    }

    func testAddressesAreBounded() throws {
        var m = DNSMessageBuilder(an: 100)
        for i in 0..<100 { m.record(type: 1, data: [10, 0, 0, UInt8(i)]) }
        XCTAssertEqual(try response(m.bytes).addresses.count, DNSResponseParser.maximumAddresses)
    }

    // MARK: hostile

    func testNotAResponseOrWrongOpcode() {
        assertWireError(DNSMessageBuilder(flags: 0x0100, an: 0).bytes, .notAResponse)
        assertWireError(DNSMessageBuilder(flags: 0x8800, an: 0).bytes, .opcode)
    }

    func testWrongQuestion() {
        assertWireError(DNSMessageBuilder(an: 0, question: "www.example.org").bytes, .questionMismatch)
        assertWireError(DNSMessageBuilder(an: 0, type: 28).bytes, .questionMismatch)
        assertWireError(DNSMessageBuilder(qd: 0, an: 0).bytes, .questionCount)
        assertWireError(DNSMessageBuilder(qd: 2, an: 0).bytes, .questionCount)
    }

    func testHugeCounts() {
        var m = DNSMessageBuilder(an: 0xFFFF)
        m.record(type: 1, data: [192, 0, 2, 1])
        assertWireError(m.bytes, .countExceedsMessage)
        var n = DNSMessageBuilder(flags: 0x8183, an: 0, ns: 0xFFFF)
        n.record(owner: [0], type: 6, data: [])
        assertWireError(n.bytes, .countExceedsMessage)
    }

    func testPointerLoop() {
        var m = DNSMessageBuilder(an: 1)
        let at = UInt8(m.bytes.count)
        m.record(owner: [0xC0, at], type: 1, data: [1, 2, 3, 4])  // points at itself
        assertWireError(m.bytes, .badPointer)
        // Two labels then a pointer back to their start: a cycle through a backward pointer.
        var n = DNSMessageBuilder(an: 1)
        let start = UInt8(n.bytes.count)
        n.record(owner: [1, 0x61, 0xC0, start], type: 1, data: [1, 2, 3, 4])
        assertWireError(n.bytes, .badPointer)
    }

    func testPointerForwardAndOutOfRange() {
        var m = DNSMessageBuilder(an: 1)
        m.record(owner: [0xC0, 0xFF], type: 1, data: [1, 2, 3, 4])
        assertWireError(m.bytes, .badPointer)
        var n = DNSMessageBuilder(an: 1)
        n.record(owner: [0xFF, 0xFF], type: 1, data: [1, 2, 3, 4])
        assertWireError(n.bytes, .badPointer)
        // A pointer as the last byte of the message.
        var o = DNSMessageBuilder(an: 0)
        o.bytes = Array(o.bytes[..<12]) + [0xC0]
        assertWireError(o.bytes, .short)
    }

    func testLongPointerChainIsBounded() {
        // 40 pointers each to the one before (all backward, so no loop), inside the RDATA of a record
        // the parser skips; an A record's owner then points at the last: more jumps than allowed.
        var m = DNSMessageBuilder(an: 2)
        let base = m.bytes.count + 11  // owner root (1) + type/class/ttl/len (10)
        var previous = 12
        var chain: [UInt8] = []
        for i in 0..<40 {
            chain += [0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF)]
            previous = base + 2 * i
        }
        m.record(owner: [0], type: 16, data: chain)
        m.record(owner: [0xC0 | UInt8(previous >> 8), UInt8(previous & 0xFF)], type: 1, data: [1, 2, 3, 4])
        assertWireError(m.bytes, .tooManyJumps)
    }

    func testLabelTypesAndNameLength() {
        var m = DNSMessageBuilder(an: 1)
        m.record(owner: [0x41, 0], type: 1, data: [1, 2, 3, 4])
        assertWireError(m.bytes, .labelType)
        var n = DNSMessageBuilder(an: 1)
        n.record(owner: Array(repeating: [63] + Array(repeating: 0x61, count: 63), count: 5).flatMap { $0 } + [0],
                 type: 1, data: [1, 2, 3, 4])
        assertWireError(n.bytes, .nameTooLong)
    }

    func testRecordLengths() {
        var m = DNSMessageBuilder(an: 1)
        m.record(type: 1, data: [1, 2, 3, 4, 5])
        assertWireError(m.bytes, .recordLength)
        var n = DNSMessageBuilder(an: 1)
        n.record(type: 1, data: [1, 2, 3, 4])
        n.bytes[n.bytes.count - 5] = 0x10  // RDLENGTH 4 → 16: past the end
        assertWireError(n.bytes, .recordLength)
        var o = DNSMessageBuilder(an: 1)
        o.record(type: 5, data: DNSMessageBuilder.name("a.example") + [0])  // CNAME with a trailing byte
        assertWireError(o.bytes, .recordLength)
    }

    func testEveryPrefixOfAGoodMessageIsAnError() {
        var m = DNSMessageBuilder(flags: 0x8180, an: 2, ns: 0)
        m.record(type: 5, data: DNSMessageBuilder.name("cdn.example.net"))
        m.record(type: 1, data: [192, 0, 2, 1])
        XCTAssertNoThrow(try parse(m.bytes))
        for cut in 0..<m.bytes.count {
            XCTAssertThrowsError(try parse(Array(m.bytes[..<cut])), "prefix of \(cut) bytes")
        }
    }

    func testRandomBytesNeverTrap() {
        var generator = SplitMix64(seed: 42)
        var m = DNSMessageBuilder(an: 2)
        m.record(type: 5, data: DNSMessageBuilder.name("cdn.example.net"))
        m.record(type: 1, data: [192, 0, 2, 1])
        for _ in 0..<20_000 {
            var bytes = m.bytes
            for _ in 0..<3 {
                let i = Int(generator.next() % UInt64(bytes.count))
                bytes[i] = UInt8(truncatingIfNeeded: generator.next())
            }
            _ = try? parse(bytes)
        }
    }
}
