// mKCP wire format: segments, the simple authenticator, the seed's AES-GCM and the packet headers,
// against vectors worked out from V2Ray's code (v2fly transport/internet/kcp segment.go, crypt.go,
// cryptreal.go, io.go; transport/internet/headers/*) with an independent Python script
// (fnv-1a + xor chain; the `cryptography` package's AES-GCM for the seed).

import NIOCore
@testable import Shared
import XCTest

final class KCPCodecTests: XCTestCase {
    let allocator = ByteBufferAllocator()

    func buffer(_ bytes: [UInt8]) -> ByteBuffer { allocator.buffer(bytes: bytes) }

    // conv 0x1234, data, option 0, timestamp 100, number 7, sendingNext 5, payload "hi".
    let dataSegment = hex("1234 01 00 00000064 00000007 00000005 0002 6869")

    func testDataSegmentRoundTrip() throws {
        var b = buffer(dataSegment)
        guard case .data(let s)? = KCPSegment.read(from: &b) else { return XCTFail("not a data segment") }
        XCTAssertEqual(b.readableBytes, 0)
        XCTAssertEqual([s.conv, UInt16(s.option)], [0x1234, 0])
        XCTAssertEqual([s.timestamp, s.number, s.sendingNext], [100, 7, 5])
        XCTAssertEqual(s.payload.bytes, Array("hi".utf8))
        var out = allocator.buffer(capacity: 32)
        KCPSegment.data(s).write(to: &out)
        XCTAssertEqual(out.bytes, dataSegment)
        XCTAssertEqual(KCPSegment.data(s).byteSize, dataSegment.count)
    }

    func testAckAndCommandSegments() throws {
        let ack = hex("0001 00 01 00000120 00000100 0000abcd 02 00000101 00000103")
        var b = buffer(ack + hex("0001 03 00 00000010 00000020 000000c8"))
        guard case .ack(let a)? = KCPSegment.read(from: &b) else { return XCTFail("not an ack") }
        XCTAssertEqual([a.receivingWindow, a.receivingNext, a.timestamp], [0x120, 0x100, 0xABCD])
        XCTAssertEqual(a.option, KCPSegment.optionClose)
        XCTAssertEqual((0..<a.count).map(a.number(at:)), [0x101, 0x103])
        guard case .command(let c)? = KCPSegment.read(from: &b) else { return XCTFail("not a command") }
        XCTAssertEqual(c.command, KCPCommand.ping.rawValue)
        XCTAssertEqual([c.sendingNext, c.receivingNext, c.peerRTO], [0x10, 0x20, 200])
        XCTAssertNil(KCPSegment.read(from: &b))
        var out = allocator.buffer(capacity: 64)
        KCPSegment.ack(a).write(to: &out)
        KCPSegment.command(c).write(to: &out)
        XCTAssertEqual(out.bytes, ack + hex("0001 03 00 00000010 00000020 000000c8"))
    }

    /// Every truncation of a valid segment is refused and leaves the buffer alone; V2Ray's data
    /// parser wants 15 bytes after the common head even for an empty payload.
    func testTruncatedSegmentsAreRefused() {
        for whole in [dataSegment, hex("0001 00 00 00000001 00000002 00000003 01 00000004"), hex("0001 02 00 00000001 00000002 00000003")] {
            for n in 0..<whole.count {
                var b = buffer(Array(whole[0..<n]))
                XCTAssertNil(KCPSegment.read(from: &b), "prefix \(n) of \(hexString(whole))")
                XCTAssertEqual(b.readableBytes, n)
            }
        }
        var empty = buffer(hex("0001 01 00 00000001 00000002 00000003 0000"))
        XCTAssertNil(KCPSegment.read(from: &empty), "14 bytes after the head: V2Ray refuses it")
    }

    func testSimpleAuthenticatorVectors() throws {
        let codec = try KCPPacketCodec(settings: KCPSettings())
        XCTAssertEqual(codec.overhead, 6)
        for (plain, sealed) in [(Array("abcdefg".utf8), hex("d1972ba8d1904acab2f42facd5")),
                                (dataSegment, hex("01f1a8f501e5bac100e5bac10081bac10086bac10083bac368ea"))] {
            var out = allocator.buffer(capacity: 64)
            codec.seal(buffer(plain), into: &out)
            XCTAssertEqual(out.bytes, sealed)
            var back = buffer(sealed)
            XCTAssertTrue(codec.open(&back))
            XCTAssertEqual(back.bytes, plain)
            // Any flipped bit fails the checksum or the length.
            for i in 0..<sealed.count {
                var bad = sealed
                bad[i] ^= 0x10
                var b = buffer(bad)
                XCTAssertFalse(codec.open(&b), "bit flip at \(i)")
            }
        }
    }

    func testSeedAESGCMVector() throws {
        var settings = KCPSettings()
        settings.seed = "vmessd-seed"
        let codec = try KCPPacketCodec(settings: settings)
        XCTAssertEqual(codec.overhead, 28)
        // nonce 00…0b, made with Python's cryptography AESGCM(sha256(seed)[:16]).
        var packet = buffer(hex("000102030405060708090a0bbbbd5b7983fbd804dfc5153daa2e7031abdf668a889e5110e3270f1bc67b5730a562ee6f"))
        XCTAssertTrue(codec.open(&packet))
        XCTAssertEqual(packet.bytes, dataSegment)
        // Our own packets open (random nonce each time, so two seals differ).
        var a = allocator.buffer(capacity: 64), b = allocator.buffer(capacity: 64)
        codec.seal(buffer(dataSegment), into: &a)
        codec.seal(buffer(dataSegment), into: &b)
        XCTAssertNotEqual(a.bytes, b.bytes)
        XCTAssertTrue(codec.open(&a))
        XCTAssertEqual(a.bytes, dataSegment)
        // Another seed, or the simple authenticator, does not open it.
        var other = KCPSettings()
        other.seed = "other"
        XCTAssertFalse(try KCPPacketCodec(settings: other).open(&b))
        XCTAssertFalse(try KCPPacketCodec(settings: KCPSettings()).open(&b))
    }

    func testPacketHeaders() throws {
        func headers(_ type: KCPSettings.HeaderType, random: UInt32, count: Int) -> [[UInt8]] {
            var h = KCPPacketHeader(type, random: random)
            return (0..<count).map { _ in
                var bytes = [UInt8](repeating: 0xEE, count: h.size)
                bytes.withUnsafeMutableBytes { h.write(into: $0) }
                return bytes
            }
        }
        XCTAssertEqual(headers(.srtp, random: 0x0000_FFFF, count: 2), [hex("b5e8 0000"), hex("b5e8 0001")])
        XCTAssertEqual(headers(.utp, random: 0xABCD_0000, count: 2), [hex("abcd 01 00"), hex("abcd 01 00")])
        XCTAssertEqual(headers(.wechatVideo, random: 0x0000_0010, count: 1), [hex("a108 00000011 00101118302230")])
        XCTAssertEqual(headers(.wireguard, random: 7, count: 1), [hex("04000000")])
        // dtls: sequence from 0; length 17, 34, 51, 68, 85, then 102 − 50 = 52.
        let dtls = headers(.dtls, random: 0x1234_0000, count: 7)
        XCTAssertEqual(dtls[0], hex("17 fefd 1234 0000 00000000 0011"))
        XCTAssertEqual(dtls.map { Int($0[11]) << 8 | Int($0[12]) }, [17, 34, 51, 68, 85, 52, 69])
        XCTAssertEqual(dtls.map { Int($0[10]) }, Array(0..<7))
        XCTAssertEqual(headers(.none, random: 1, count: 1), [[]])

        // The codec puts the header first and the receiver skips it unchecked.
        var settings = KCPSettings()
        settings.header = .wechatVideo
        let codec = try KCPPacketCodec(settings: settings)
        XCTAssertEqual(codec.overhead, 19)
        var out = allocator.buffer(capacity: 64)
        codec.seal(buffer(dataSegment), into: &out)
        XCTAssertEqual(Array(out.bytes[0..<2]), hex("a108"))
        XCTAssertEqual(Array(out.bytes[13...]), hex("01f1a8f501e5bac100e5bac10081bac10086bac10083bac368ea"))
        XCTAssertTrue(codec.open(&out))
        XCTAssertEqual(out.bytes, dataSegment)
    }

    func testSettingsDerivedSizes() {
        let s = KCPSettings()
        // V2Ray's defaults: 5 MB/s up at MTU 1350 and TTI 50 → 5·2^20/1350/20 = 194 segments; 20 down → 776.
        XCTAssertEqual(s.sendingInFlightSize, 194)
        XCTAssertEqual(s.receivingInFlightSize, 776)
        XCTAssertEqual(s.sendingBufferSize, 2 * 1024 * 1024 / 1350)
        var tiny = KCPSettings()
        tiny.uplinkCapacity = 0
        XCTAssertEqual(tiny.sendingInFlightSize, 8)
    }
}
