// Geodata decoding: synthetic files, and hostile ones (truncated, huge lengths, wrong wire types),
// which must be errors and never traps.

import XCTest

@testable import Shared

final class GeoDataDecoderTests: XCTestCase {
    typealias F = GeoDataFixture

    func testSiteTag() throws {
        let domains = try XCTUnwrap(GeoDataDecoder.site(F.geosite, code: "test"))
        XCTAssertEqual(domains, [
            .init(kind: .rootDomain, value: "example.com", attributes: ["ads"]),
            .init(kind: .full, value: "full.example.org", attributes: []),
            .init(kind: .plain, value: "tracker", attributes: []),
            .init(kind: .regex, value: "^cdn[0-9]+\\.example\\.net$", attributes: []),
        ])
        XCTAssertNil(try GeoDataDecoder.site(F.geosite, code: "nope"))
        XCTAssertEqual(try GeoDataDecoder.codes(F.geosite), ["OTHER", "TEST", "CN"])
    }

    func testIPTag() throws {
        let cn = try XCTUnwrap(GeoDataDecoder.ip(F.geoip, code: "CN"))
        XCTAssertEqual(cn.cidrs.map(\.prefix), [24, 10, 20])
        XCTAssertEqual(cn.cidrs[0].address, [1, 0, 1, 0])
        XCTAssertFalse(cn.inverse)
        XCTAssertTrue(try XCTUnwrap(GeoDataDecoder.ip(F.geoip, code: "notcn")).inverse)
        XCTAssertNil(try GeoDataDecoder.ip(F.geoip, code: "xx"))
    }

    func testUnknownFieldsAreSkipped() throws {
        // Fields of every wire type the reader knows, before and inside the entry.
        let junk = F.field(9, varint: 300) + F.varint(10 << 3 | 1) + [UInt8](repeating: 7, count: 8)
            + F.varint(11 << 3 | 5) + [1, 2, 3, 4] + F.string(12, "x")
        let entry = F.field(1, junk + F.string(1, "A") + F.field(2, F.domain(3, "a.b") + junk))
        let file = junk + entry
        XCTAssertEqual(try GeoDataDecoder.site(file, code: "a"), [.init(kind: .full, value: "a.b", attributes: [])])
    }

    func testEmptyFileHasNoTags() throws {
        XCTAssertNil(try GeoDataDecoder.site([], code: "cn"))
        XCTAssertEqual(try GeoDataDecoder.codes([]), [])
    }

    /// Every prefix of a valid file either decodes (cut at an entry boundary) or throws.
    func testTruncatedAtEveryOffset() {
        for files in [(F.geosite, true), (F.geoip, false)] {
            for cut in 0..<files.0.count {
                let bytes = Array(files.0[0..<cut])
                if files.1 {
                    _ = try? GeoDataDecoder.site(bytes, code: "CN")
                    _ = try? GeoDataDecoder.codes(bytes)
                } else {
                    _ = try? GeoDataDecoder.ip(bytes, code: "PRIVATE")
                }
            }
        }
        // A cut inside the wanted entry is an error, not a shorter list.
        let cut = Array(F.geosite.dropLast(3))
        XCTAssertThrowsError(try GeoDataDecoder.site(cut, code: "CN"))
    }

    func testHugeLength() {
        let file: [UInt8] = [0x0a] + F.varint(UInt64.max >> 1) + [1, 2, 3]
        XCTAssertThrowsError(try GeoDataDecoder.site(file, code: "cn")) { error in
            let malformed = error as? ProtobufReader.Malformed
            XCTAssertEqual(malformed?.offset, 1)
            XCTAssertTrue(malformed?.reason.hasPrefix("length 9223372036854775807 runs past the end") == true, "\(error)")
        }
        let nested = F.field(1, F.string(1, "CN") + [0x12] + F.varint(1 << 40))
        XCTAssertThrowsError(try GeoDataDecoder.site(nested, code: "cn"))
    }

    func testMalformedVarints() {
        XCTAssertThrowsError(try GeoDataDecoder.codes([0x0a, 0x80]))  // truncated
        let tooLong: [UInt8] = [0x10] + [UInt8](repeating: 0xff, count: 10) + [0x01]
        XCTAssertThrowsError(try GeoDataDecoder.codes(tooLong)) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "varint longer than 64 bits")
        }
    }

    func testWrongWireTypes() {
        // entry as a varint is skipped at the top level (an unknown shape of field 1 is an error).
        XCTAssertThrowsError(try GeoDataDecoder.codes(F.field(1, varint: 5))) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "field 1 has wire type 0, expected 2")
        }
        // country_code as a varint.
        XCTAssertThrowsError(try GeoDataDecoder.site(F.field(1, F.field(1, varint: 3)), code: "x"))
        // domain type as a string.
        XCTAssertThrowsError(try GeoDataDecoder.site(F.field(1, F.string(1, "X") + F.field(2, F.string(1, "a"))), code: "x"))
        // wire types 3 and 4 (groups) and 6/7 do not exist in these files.
        XCTAssertThrowsError(try GeoDataDecoder.codes([0x0b])) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "unsupported wire type 3")
        }
        XCTAssertThrowsError(try GeoDataDecoder.codes([0x00])) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "field number 0")
        }
        // a truncated fixed64.
        XCTAssertThrowsError(try GeoDataDecoder.codes([0x09, 1, 2]))
    }

    func testBadValues() {
        XCTAssertThrowsError(try GeoDataDecoder.site(F.site("X", [F.domain(7, "a")]), code: "x")) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "unknown domain type 7")
        }
        XCTAssertThrowsError(try GeoDataDecoder.ip(F.ip("X", [([1, 2, 3], 8)]), code: "x")) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "CIDR address of 3 bytes")
        }
        XCTAssertThrowsError(try GeoDataDecoder.ip(F.ip("X", [([1, 2, 3, 4], 33)]), code: "x")) { error in
            XCTAssertEqual((error as? ProtobufReader.Malformed)?.reason, "CIDR prefix 33 too long")
        }
    }

    /// Deterministic garbage: random bytes and random mutations of a valid file never trap.
    func testRandomGarbage() {
        var generator = SplitMix(seed: 42)
        for round in 0..<2_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(generator.next() % 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            } else {
                bytes = F.geosite
                for _ in 0..<3 {
                    bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
            }
            _ = try? GeoDataDecoder.site(bytes, code: "CN")
            _ = try? GeoDataDecoder.ip(bytes, code: "CN")
            _ = try? GeoDataDecoder.codes(bytes)
        }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
