import NIOCore
import XCTest
@testable import Shared

/// The §14 header vectors: t = 1700000000, random 01020304, ConnNonce a0…a7, reqIV 20…2f,
/// reqKey 40…4f, V 5a, options 0d, P = 4 (eeeeeeee), Sec 3, TCP to www.example.com:443.
final class HeaderVectorTests: XCTestCase {
    let id = UserID(text: "b831381d-6324-4d53-ad4f-8cda48b30811")!

    var request: RequestHeader {
        RequestHeader(requestIV: range(0x20, 16), requestKey: range(0x40, 16), responseAuth: 0x5A,
                      options: RequestOptions(rawValue: 0x0D), security: .aes128GCM, command: .tcp, port: 443,
                      address: .domain("www.example.com"), padding: [0xEE, 0xEE, 0xEE, 0xEE])
    }

    func testCommandSection() throws {
        let cmd = request.encodeCommandSection()
        XCTAssertEqual(hexString(cmd), """
            01202122232425262728292a2b2c2d2e2f404142434445464748494a4b4c4d4e4f5a0d43000101bb020f\
            7777772e6578616d706c652e636f6deeeeeeee40dcbed6
            """)
        XCTAssertEqual(try RequestHeader.parse(cmd[...]), request)
    }

    func testAEADRequestHeaderWire() throws {
        let wire = try AEADHeader.seal(request, cmdKey: id.cmdKey, time: 1_700_000_000, authRandom: [1, 2, 3, 4],
                                       connectionNonce: range(0xA0, 8))
        XCTAssertEqual(wire.count, 123)
        XCTAssertEqual(hexString(Array(wire[0..<16])), "4774fe5cc901ea4f81f2159909767a36")
        XCTAssertEqual(hexString(Array(wire[16..<34])), "63505d20db7d3851cbf83741be4ea8da726c")
        XCTAssertEqual(hexString(Array(wire[34..<42])), "a0a1a2a3a4a5a6a7")
        XCTAssertEqual(hexString(Array(wire[42...])), """
            62d5c4740e1908b106458d35e2c4f24bcb4c96d41cade441e297c64a096487921c4886ed9f69f82b\
            875e1f32c249405315fb23c4cce4c3bd4e9782ff064bf1ec5c8f90a9366ca6b634481f007a442b5ac2
            """)
    }

    func testHeaderKeys() {
        let e = hex("4774fe5cc901ea4f81f2159909767a36"), n = range(0xA0, 8)
        XCTAssertEqual(hexString(KDF.key16(id.cmdKey, KDFLabel.headerLengthKey, e, n)), "1ed9170e72e2b891b81b38f8447a5f45")
        XCTAssertEqual(hexString(KDF.nonce12(id.cmdKey, KDFLabel.headerLengthNonce, e, n)), "1d230cce18be3869562451ad")
        XCTAssertEqual(hexString(KDF.key16(id.cmdKey, KDFLabel.headerPayloadKey, e, n)), "6e187a99095965135796d8f0574acf41")
        XCTAssertEqual(hexString(KDF.nonce12(id.cmdKey, KDFLabel.headerPayloadNonce, e, n)), "cfc346dee86e2de48f20fc36")
    }

    func testAEADResponse() throws {
        let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
        XCTAssertEqual(hexString(keys.key), "ba22b7dc95f6cc8765757be4bccf37cd")
        XCTAssertEqual(hexString(keys.iv), "36db1adc807ac50e4c85bd86a174b4aa")
        XCTAssertEqual(hexString(KDF.key16(keys.key, KDFLabel.responseLengthKey)), "c5cf6200dfff985f25ecbda763d0dbab")
        XCTAssertEqual(hexString(KDF.nonce12(keys.iv, KDFLabel.responseLengthNonce)), "0b975c442ca5cc2b5b8c3659")
        XCTAssertEqual(hexString(KDF.key16(keys.key, KDFLabel.responseKey)), "9d39c747b0df2a08c25cbf951401db55")
        XCTAssertEqual(hexString(KDF.nonce12(keys.iv, KDFLabel.responseNonce)), "46ca55ffcba0620ce359cba0")
        let sealed = try ResponseHeader.sealAEAD(ResponseHeader.plain(responseAuth: 0x5A), keys: keys)
        XCTAssertEqual(hexString(sealed), "21b32ffb500cb09f6405f6e9a4cd6eb54f9f" + "ca058288d15fc3d442c64a305fead981f9753eca")
        XCTAssertEqual(ResponseHeader.openAEADLength(Array(sealed[0..<18]), keys: keys), 4)
        XCTAssertEqual(ResponseHeader.openAEADHeader(Array(sealed[18...]), keys: keys), [0x5A, 0, 0, 0])
    }

    func testLegacyHeader() throws {
        XCTAssertEqual(hexString(LegacyHeader.auth(id: id.bytes, time: 1_700_000_000)), "cb4c98431253a6f41d16adc57e6d3550")
        XCTAssertEqual(hexString(LegacyHeader.iv(time: 1_700_000_000)), "7a29d7bdc972aaefb1f54e5205589e78")
        let wire = try LegacyHeader.seal(request, primary: id, authID: id.bytes, time: 1_700_000_000)
        XCTAssertEqual(hexString(wire), """
            cb4c98431253a6f41d16adc57e6d355018d016c99e14084cc551192bbe0ba69019ef06d8d6b695d1f7c63c3b2ff3f159\
            b2785e0da13b55c51a2504bac994543ff7e0ecbefa111e5d0f4ea35980bfae4ff4
            """)
        let keys = ResponseHeader.bodyKeys(request: request, legacy: true)
        XCTAssertEqual(hexString(keys.key), "0d712dea46b6358a634362733f554587")
        XCTAssertEqual(hexString(keys.iv), "35ba6d08f0e34c15b9d0b09998960eb6")
        let cfb = try AESCFBStream(key: keys.key, iv: keys.iv, encrypting: true)
        XCTAssertEqual(hexString(cfb.apply([0x5A, 0, 0, 0])), "d1a20d03")
    }

    func testMuxCommandSection() {
        let h = RequestHeader(requestIV: range(0x20, 16), requestKey: range(0x40, 16), responseAuth: 0x5A,
                              options: RequestOptions(rawValue: 0x0D), security: .aes128GCM, command: .mux, port: 0,
                              address: nil, padding: [])
        XCTAssertEqual(hexString(h.encodeCommandSection()),
                       "01202122232425262728292a2b2c2d2e2f404142434445464748494a4b4c4d4e4f5a0d030003d7bc7b17")
    }
}
