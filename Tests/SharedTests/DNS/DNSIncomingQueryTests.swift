// What the dns outbound reads from clients and writes back: which queries it answers itself, the
// answers (read back with the resolver's own parser), and the TCP framing fed a byte at a time.

import NIOCore
import XCTest

@testable import Shared

final class DNSIncomingQueryTests: XCTestCase {
    func testAnswersAreWhatTheResolverWouldAccept() throws {
        let sent = DNSQuestion("Echo.Test", type: .a)!.query(id: 0x4242)
        let query = try XCTUnwrap(DNSIncomingQuery.parse(ByteBuffer(bytes: sent)))
        XCTAssertEqual(query.id, 0x4242)
        XCTAssertTrue(query.recursionDesired)
        XCTAssertEqual(query.question, DNSQuestion("echo.test", type: .a))
        let answer = query.answer(addresses: [[127, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [10, 0, 0, 2]],
                                  rcode: 0, ttl: 600)
        XCTAssertEqual(Array(answer[12..<(12 + query.questionSection.count)]), Array(sent[12...]), "question echoed as sent")
        guard case .response(let response) = try DNSResponseParser.parse(ByteBuffer(bytes: answer), question: query.question) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(response.id, 0x4242)
        XCTAssertEqual(response.addresses, [[127, 0, 0, 1], [10, 0, 0, 2]], "the IPv6 address is not an A record")
        XCTAssertEqual(response.ttl, 600)
    }

    func testNameErrorAnswer() throws {
        let query = try XCTUnwrap(DNSIncomingQuery.parse(ByteBuffer(bytes: DNSQuestion("no.test", type: .aaaa)!.query(id: 7))))
        let answer = query.answer(addresses: [], rcode: 3, ttl: 600)
        guard case .response(let response) = try DNSResponseParser.parse(ByteBuffer(bytes: answer), question: query.question) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(response.rcode, .nameError)
        XCTAssertEqual(response.addresses, [])
    }

    func testUDPAnswersFitTheClientsLimit() throws {
        let many = (0..<64).map { [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [UInt8($0)] }
        let plain = try XCTUnwrap(DNSIncomingQuery.parse(ByteBuffer(bytes: DNSQuestion("v6.test", type: .aaaa)!.query(id: 9))))
        XCTAssertEqual(plain.udpPayloadLimit, 512)
        let cut = plain.answer(addresses: many, rcode: 0, ttl: 60, limit: plain.udpPayloadLimit)
        XCTAssertLessThanOrEqual(cut.count, 512)
        XCTAssertEqual(cut[2] & 0x02, 0x02, "TC set")
        XCTAssertEqual(try DNSResponseParser.parse(ByteBuffer(bytes: cut), question: plain.question), .truncated(id: 9))
        let whole = plain.answer(addresses: many, rcode: 0, ttl: 60)
        guard case .response(let response) = try DNSResponseParser.parse(ByteBuffer(bytes: whole), question: plain.question) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(response.addresses.count, 64)

        // EDNS0: an OPT record (root owner, type 41, CLASS = payload size 1232) raises the limit.
        var edns = DNSQuestion("v6.test", type: .aaaa)!.query(id: 10)
        edns[11] = 1
        edns += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        let query = try XCTUnwrap(DNSIncomingQuery.parse(ByteBuffer(bytes: edns)))
        XCTAssertEqual(query.udpPayloadLimit, 1232)
        let answer = query.answer(addresses: many, rcode: 0, ttl: 60, limit: query.udpPayloadLimit)
        XCTAssertLessThanOrEqual(answer.count, 1232)
        XCTAssertGreaterThan(answer.count, 1232 - 28)
        // A malformed tail does not stop the question from being answered.
        var broken = DNSQuestion("v6.test", type: .aaaa)!.query(id: 11)
        broken[11] = 200
        XCTAssertEqual(DNSIncomingQuery.parse(ByteBuffer(bytes: broken))?.udpPayloadLimit, 512)
    }

    /// FuzzDNSMessage found it: a client's question name ending in a compression pointer (to offset 0,
    /// its own header) was echoed verbatim, so in the answer it pointed into the answer's header and
    /// named something else: an answer the client could not match. Now such a name is written out.
    func testCompressedQuestionIsWrittenOutInFull() throws {
        let query: [UInt8] = [0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                              0x01, 0x31, 0xC0, 0x00, 0x00, 0x01, 0x00, 0x01, 0xC0]
        let parsed = try XCTUnwrap(DNSIncomingQuery.parse(ByteBuffer(bytes: query)))
        XCTAssertEqual(parsed.question.name, [0x31, 0x2E, 0, 0, 0])
        let answer = parsed.answer(addresses: [[192, 0, 2, 1]], rcode: 0, ttl: 600)
        guard case .response(let response) = try DNSResponseParser.parse(ByteBuffer(bytes: answer), question: parsed.question) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(response.id, 0x0300)
        XCTAssertEqual(response.addresses, [[192, 0, 2, 1]])
    }

    func testOnlyPlainAddressQuestionsAreAnswered() {
        var txt = DNSQuestion("a.test", type: .a)!.query(id: 1)
        txt[txt.count - 3] = 16  // TXT
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: txt)))
        var chaos = DNSQuestion("a.test", type: .a)!.query(id: 1)
        chaos[chaos.count - 1] = 3  // class CH
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: chaos)))
        var response = DNSQuestion("a.test", type: .a)!.query(id: 1)
        response[2] |= 0x80
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: response)))
        var two = DNSQuestion("a.test", type: .a)!.query(id: 1)
        two[5] = 2
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: two)))
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: [0, 1, 1, 0, 0, 1])))
        XCTAssertNil(DNSIncomingQuery.parse(ByteBuffer(bytes: [])))
    }

    func testStreamFramerAtEverySplit() {
        let messages: [[UInt8]] = [DNSQuestion("a.test", type: .a)!.query(id: 1), [], DNSQuestion("b.test", type: .aaaa)!.query(id: 2)]
        var stream: [UInt8] = []
        for m in messages { stream += [UInt8(m.count >> 8), UInt8(m.count & 0xFF)] + m }
        for split in 0...stream.count {
            var framer = DNSStreamFramer()
            var out: [[UInt8]] = []
            for piece in [stream[..<split], stream[split...]] {
                var buffer = ByteBuffer(bytes: piece)
                framer.append(&buffer)
                while let m = framer.next() { out.append(Array(m.readableBytesView)) }
            }
            XCTAssertEqual(out, messages, "split at \(split)")
            XCTAssertEqual(framer.pendingBytes, 0)
        }
        var framer = DNSStreamFramer()
        for byte in stream.prefix(5) {
            var buffer = ByteBuffer(bytes: [byte])
            framer.append(&buffer)
            XCTAssertNil(framer.next())
        }
        XCTAssertEqual(framer.pendingBytes, 5)
        let framed = DNSStreamFramer.frame(ByteBuffer(bytes: messages[0]), allocator: ByteBufferAllocator())
        XCTAssertEqual(Array(framed.readableBytesView), Array(stream.prefix(2 + messages[0].count)))
    }
}
