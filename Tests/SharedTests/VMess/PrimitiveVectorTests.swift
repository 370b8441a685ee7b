import XCTest
@testable import Shared

/// Golden vectors of vmess-protocol.md §3 and §14 for the primitives and the identity.
final class PrimitiveVectorTests: XCTestCase {
    func testChecksums() {
        XCTAssertEqual(Checksum.fnv1a32([UInt8]()), 0x811C_9DC5)
        XCTAssertEqual(Checksum.fnv1a32(Array("a".utf8)), 0xE40C_292C)
        XCTAssertEqual(Checksum.crc32(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testKDFAnchorVectorFromReference() {
        let out = KDF.derive(Array("Demo Key for KDF Value Test".utf8),
                             Array("Demo Path for KDF Value Test".utf8),
                             Array("Demo Path for KDF Value Test2".utf8),
                             Array("Demo Path for KDF Value Test3".utf8))
        XCTAssertEqual(hexString(out), "53e9d7e1bd7bd25022b71ead07d8a596efc8a845c7888652fd684b4903dc8892")
    }

    /// Labels longer than the 64-byte block (hashed first, as HMAC does) at two levels, and one of
    /// exactly 65 bytes. Vector from an independent Python rendering of §3 over hmac/hashlib
    /// (which reproduces the anchor vector above); no client sends such labels, but derive() accepts them.
    func testKDFLabelsLongerThanABlock() {
        let out = KDF.derive(Array(0..<16), Array(0..<100), Array("short".utf8), [UInt8](repeating: 7, count: 65))
        XCTAssertEqual(hexString(out), "818ea717d4a2f0bc81b9529829b51ec3b0aa90cb27c2d7392584097e7610ee8a")
    }

    func testIdentity() throws {
        let id = try XCTUnwrap(UserID(text: "b831381d-6324-4d53-ad4f-8cda48b30811"))
        XCTAssertEqual(hexString(id.bytes), "b831381d63244d53ad4f8cda48b30811")
        XCTAssertEqual(hexString(id.cmdKey), "b50d916ac0cec067981af8e5f38a758f")
        XCTAssertEqual(hexString(AuthID.key(cmdKey: id.cmdKey)), "1415ba74ca8b3d041a8f583fb4116315")
        let alters = id.alterIDs(2)
        XCTAssertEqual(UserID(bytes: alters[0]).text, "5a071834-12d5-980a-72ac-845d5568d17d")
        XCTAssertEqual(UserID(bytes: alters[1]).text, "b5f0dba2-de16-aea1-087e-fdbaa0aac7a3")
        XCTAssertEqual(id.text, "b831381d-6324-4d53-ad4f-8cda48b30811")
        XCTAssertEqual(id.shortText, "b831381d")
        let small = UserID(bytes: [0x00, 0x0F, 0xA0, 0x01] + Array(repeating: 0x05, count: 12))
        XCTAssertEqual(small.text, "000fa001-0505-0505-0505-050505050505", "two digits per byte, leading zeros kept")
        XCTAssertEqual(small.shortText, "000fa001")
        let table = try UserTable(settings: VMessInboundSettings(users: [
            VMessUser(id: id.text), VMessUser(id: small.text, email: "a@example.com"),
        ]))
        XCTAssertEqual(table.entries.map(\.key), ["b831381d", "a@example.com"], "email, else the short id")
    }

    func testUUIDParsing() {
        XCTAssertNotNil(UserID(text: "b831381d63244d53ad4f8cda48b30811"))
        XCTAssertNotNil(UserID(text: "B831381D-6324-4D53-AD4F-8CDA48B30811"))
        XCTAssertNil(UserID(text: "b831381d-6324-4d53-ad4f-8cda48b3081"))
        XCTAssertNil(UserID(text: "b831381d-6324-4d53-ad4f-8cda48b308111"))
        XCTAssertNil(UserID(text: "g831381d-6324-4d53-ad4f-8cda48b30811"))
        XCTAssertNil(UserID(text: ""))
    }

    func testAuthID() throws {
        let id = UserID(text: "b831381d-6324-4d53-ad4f-8cda48b30811")!
        XCTAssertEqual(hexString(AuthID.plain(time: 1_700_000_000, random: [1, 2, 3, 4])), "000000006553f10001020304b85575f7")
        let e = try AuthID.create(cmdKey: id.cmdKey, time: 1_700_000_000, random: [1, 2, 3, 4])
        XCTAssertEqual(hexString(e), "4774fe5cc901ea4f81f2159909767a36")
        let dec = try AESBlock(key: AuthID.key(cmdKey: id.cmdKey), encrypting: false)
        XCTAssertEqual(e.withUnsafeBytes { AuthID.check($0.baseAddress!, decryptor: dec) }, .time(1_700_000_000))
        var bad = e
        bad[3] ^= 1
        XCTAssertEqual(bad.withUnsafeBytes { AuthID.check($0.baseAddress!, decryptor: dec) }, .badChecksum)
    }

    func testSHAKE128MaskStream() {
        var s = SHAKE128(seed: range(0x20, 16))
        XCTAssertEqual([s.next(), s.next(), s.next(), s.next()], [0xE488, 0x2235, 0x7582, 0xB194])
    }

    func testSHAKE128LongOutputMatchesOpenSSL() throws {
        // Cross-check many blocks of output (re-permutation path) against hashlib-compatible SHAKE128.
        var s = SHAKE128(seed: Array("abc".utf8))
        var out = [UInt8](repeating: 0, count: 32)
        s.read(into: &out)
        XCTAssertEqual(hexString(out), "5881092dd818bf5cf8a3ddb793fbcba74097d5c526a6d35f97b83351940f2cc8")
        var t = SHAKE128(seed: [])
        var long = [UInt8](repeating: 0, count: 500)
        t.read(into: &long)
        XCTAssertEqual(hexString(Array(long[0..<16])), "7f9c2ba4e88f827d616045507605853e")
        XCTAssertEqual(hexString(Array(long[484..<500])), Self.shakeEmpty500Tail)
    }

    /// Computed independently with Python's hashlib.shake_128(b"").digest(500)[484:500].
    static let shakeEmpty500Tail = "a653f2a5c4492c1add544512dda25298"
}
