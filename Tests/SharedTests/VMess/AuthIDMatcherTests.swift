// AEAD AuthID matching over many users: the AES-NI batch scan must find exactly the users the
// one-EVP-call-per-user path finds (checked against OpenSSL's decryption), the per-address shortcut
// must only change the order, and handshakes must be accepted and refused as before.

import NIOCore
import XCTest

@testable import Shared

final class AuthIDMatcherTests: XCTestCase {
    let now: Int64 = 1_700_000_000
    lazy var ids: [UserID] = (0..<103).map { _ in UserID(bytes: SecureRandom.bytes(16)) }
    lazy var authKeys: [[UInt8]] = ids.map { AuthID.key(cmdKey: $0.cmdKey) }

    func candidates(_ matcher: AuthIDMatcher, _ authID: [UInt8], source: SourceKey? = nil) -> [Int] {
        var seen: [Int] = []
        authID.withUnsafeBytes { p in matcher.forEachCandidate(p.baseAddress!, now: now, source: source) { seen.append($0); return false } }
        return seen
    }

    /// The users whose decryption (through OpenSSL) starts with a time within `window` of now.
    func near(_ authID: [UInt8], window: UInt64) throws -> [Int] {
        try authKeys.indices.filter { i in
            let plain = try AESBlock(key: authKeys[i], encrypting: false).apply(authID)
            let t = plain[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return t &- UInt64(bitPattern: now) &+ window <= 2 &* window
        }
    }

    func testTheScanFindsWhatOpenSSLFinds() throws {
        try XCTSkipUnless(AuthIDMatcher.hasAESNI, "no AES-NI on this CPU: the EVP path is the only one")
        let fast = AuthIDMatcher(authKeys: authKeys)
        for (user, offset) in [(0, 0), (57, -119), (102, 120), (5, -3_600), (99, 86_400 * 300)] {
            let authID = try AuthID.create(cmdKey: ids[user].cmdKey, time: now + Int64(offset))
            XCTAssertEqual(candidates(fast, authID), [user], "user \(user), \(offset) s off")
            XCTAssertEqual(try near(authID, window: AuthIDMatcher.looseWindow), [user])
        }
        // Garbage and clocks years off: nobody.
        XCTAssertEqual(candidates(fast, SecureRandom.bytes(16)), [])
        XCTAssertEqual(candidates(fast, try AuthID.create(cmdKey: ids[3].cmdKey, time: now + (1 << 27))), [])
        // A window so wide that about half the users are candidates: more than fit the scan's buffer
        // at once, so the scan goes on after each full buffer; the same users, in table order, once.
        let wide: UInt64 = 1 << 62
        let many = AuthIDMatcher(authKeys: authKeys, window: wide)
        for _ in 0..<20 {
            let authID = SecureRandom.bytes(16)
            XCTAssertEqual(candidates(many, authID), try near(authID, window: wide))
        }
    }

    func testWithoutAESNIEveryUserIsACandidateAndTheLastMatchFromAnAddressComesFirst() {
        let slow = AuthIDMatcher(authKeys: authKeys, accelerated: false)
        XCTAssertEqual(candidates(slow, SecureRandom.bytes(16)), Array(0..<103))
        let here = SourceKey(address: [192, 0, 2, 7])
        let there = SourceKey(address: [UInt8](repeating: 0x20, count: 16))
        slow.remember(here, user: 42)
        let order = candidates(slow, SecureRandom.bytes(16), source: here)
        XCTAssertEqual(order.first, 42)
        XCTAssertEqual(order.sorted(), Array(0..<103), "every user once")
        XCTAssertEqual(candidates(slow, SecureRandom.bytes(16), source: there).first, 0)
        // An IPv4 address and its mapped IPv6 form are one client.
        XCTAssertEqual(SourceKey(address: [192, 0, 2, 7]), SourceKey(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 7]))
        XCTAssertNil(SourceKey(address: [1, 2, 3]))
    }

    /// The whole handshake, through the table's matcher: the right user, a skewed clock reported as
    /// such, a replay refused, and the returning client found first.
    func testHandshakesAcrossManyUsers() throws {
        let table = try UserTable(users: ids.enumerated().map { ($1, 0, 0, "u\($0)@x") })
        let replay = GenerationalReplayFilter()
        let source = SourceKey(address: [198, 51, 100, 1])
        func handshake(_ user: Int, offset: Int64 = 0) throws -> ServerHandshake.Outcome {
            let header = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 1,
                                       options: RequestOptions(rawValue: 0x01), security: .aes128GCM, command: .tcp, port: 443,
                                       address: .domain("example.com"))
            let wire = try AEADHeader.seal(header, cmdKey: ids[user].cmdKey, time: now + offset)
            var hs = ServerHandshake(users: table, replay: replay, sessions: SessionHistory(), disableInsecure: false, source: source)
            var buffer = ByteBuffer(bytes: wire)
            return hs.feed(&buffer, now: now)
        }
        for user in [102, 0, 102, 51] {
            guard case .accepted(let a) = try handshake(user) else { return XCTFail("user \(user) refused") }
            XCTAssertEqual(a.user.index, user)
        }
        guard case .rejected(.clockSkew(let skew), _) = try handshake(7, offset: 600) else { return XCTFail("skew not reported") }
        XCTAssertEqual(skew, 600)
    }

    /// `contains` (asked once per accepted connection) answers from a set kept with the entries,
    /// through runtime additions and removals.
    func testContainsFollowsAddedAndRemovedUsers() throws {
        let table = try UserTable(users: ids.enumerated().map { ($1, 0, 0, "u\($0)@x") })
        XCTAssertTrue(ids.allSatisfy(table.contains))
        let newcomer = UserID(bytes: SecureRandom.bytes(16))
        XCTAssertFalse(table.contains(newcomer))
        let added = try table.adding(id: newcomer, alterId: 0, level: 0, email: "new@x")
        XCTAssertTrue(added.contains(newcomer))
        XCTAssertFalse(table.contains(newcomer), "the old table is unchanged")
        let removed = added.removing(email: "u5@x")
        XCTAssertFalse(removed.contains(ids[5]))
        XCTAssertTrue(removed.contains(newcomer))
        XCTAssertTrue(removed.contains(ids[6]))
    }
}
