import NIOCore
import XCTest
@testable import Shared

final class ServerHandshakeTests: XCTestCase {
    let allocator = ByteBufferAllocator()
    let alice = UserID(text: "b831381d-6324-4d53-ad4f-8cda48b30811")!
    let bob = UserID(text: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")!
    let now: Int64 = 1_700_000_000

    func table(bobAlterId: Int = 0, accelerated: Bool = AuthIDMatcher.hasAESNI) throws -> UserTable {
        try UserTable(users: [(alice, 0, 0, "alice@x"), (bob, bobAlterId, 1, nil)], acceleratedAuthMatching: accelerated)
    }

    func request(security: Security = .aes128GCM, options: UInt8 = 0x0D, command: RequestCommand = .tcp,
                 address: VMessAddress? = .domain("www.example.com")) -> RequestHeader {
        RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 0x5A,
                      options: RequestOptions(rawValue: options), security: security, command: command, port: 443,
                      address: address, padding: SecureRandom.bytes(Int.random(in: 0...15)))
    }

    func run(_ wire: [UInt8], table t: UserTable, replay: AuthIDReplayFilter = GenerationalReplayFilter(),
             disableInsecure: Bool = false, at time: Int64? = nil, dripFeed: Bool = false) -> (ServerHandshake.Outcome, Int) {
        var hs = ServerHandshake(users: t, replay: replay, sessions: SessionHistory(), disableInsecure: disableInsecure)
        var buf = allocator.buffer(capacity: wire.count)
        if !dripFeed { buf.writeBytes(wire) }
        var i = 0
        while true {
            if dripFeed {
                guard i < wire.count else { return (.needMore, buf.readableBytes) }
                buf.writeInteger(wire[i]); i += 1
            }
            let o = hs.feed(&buf, now: time ?? now)
            if case .needMore = o, dripFeed { continue }
            return (o, buf.readableBytes)
        }
    }

    func accepted(_ o: ServerHandshake.Outcome) -> ServerHandshake.Accepted? {
        if case .accepted(let a) = o { return a }
        return nil
    }

    func testAEADAcceptedWholeAndDripFedLeavesBodyBytes() throws {
        let t = try table()
        let h = request()
        let wire = try AEADHeader.seal(h, cmdKey: bob.cmdKey, time: now) + [1, 2, 3]
        for drip in [false, true] {
            let (o, left) = run(wire, table: t, dripFeed: drip)
            let a = try XCTUnwrap(accepted(o), "drip=\(drip)")
            XCTAssertEqual(a.header, h)
            XCTAssertEqual(a.user.index, 1)
            XCTAssertFalse(a.legacy)
            XCTAssertEqual(a.consumed, wire.count - 3)
            if !drip { XCTAssertEqual(left, 3) }
        }
    }

    func testEveryCutPoint() throws {
        let t = try table()
        let wire = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now)
        for cut in 0...wire.count {
            var hs = ServerHandshake(users: t, replay: GenerationalReplayFilter(), sessions: SessionHistory(), disableInsecure: false)
            var b = allocator.buffer(bytes: wire[0..<cut])
            var o = hs.feed(&b, now: now)
            if cut < wire.count {
                guard case .needMore = o else { return XCTFail("cut \(cut): \(o)") }
                b.writeBytes(wire[cut...])
                o = hs.feed(&b, now: now)
            }
            XCTAssertNotNil(accepted(o), "cut \(cut)")
        }
    }

    func testReplayIsRejectedWithDrain() throws {
        let t = try table()
        let filter = GenerationalReplayFilter()
        let wire = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now)
        XCTAssertNotNil(accepted(run(wire, table: t, replay: filter).0))
        for _ in 0..<12 {
            guard case .rejected(.replay, .drain(let total)) = run(wire, table: t, replay: filter).0 else { return XCTFail() }
            XCTAssertTrue((54...3382).contains(total))
        }
    }

    func testClockWindow() throws {
        let t = try table()
        for skew: Int64 in [-119, 119, 0] {
            let wire = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now + skew)
            let a = try XCTUnwrap(accepted(run(wire, table: t).0), "skew \(skew)")
            XCTAssertEqual(a.skew, skew, "the accepted skew feeds the metrics' histogram")
        }
        for skew: Int64 in [-125, 125] {
            let wire = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now + skew)
            guard case .rejected(.clockSkew(let s), .drain) = run(wire, table: t).0 else { return XCTFail("skew \(skew)") }
            XCTAssertEqual(s, skew)
        }
    }

    func testUnknownUserAndGarbageDrainWithStableThreshold() throws {
        let t = try table()
        var totals = Set<Int>()
        for _ in 0..<50 {
            guard case .rejected(.unknownUser, .drain(let total)) = run(SecureRandom.bytes(100), table: t).0 else { return XCTFail() }
            totals.insert(total - t.drainBase)
        }
        XCTAssertTrue(totals.allSatisfy { (54..<(54 + t.drainRandomMax)).contains($0) })
        // Fewer than 16 bytes: keep waiting (the handler closes on EOF without draining).
        guard case .needMore = run(SecureRandom.bytes(15), table: t).0 else { return XCTFail() }
    }

    func testTamperedHeaderDrains() throws {
        let t = try table()
        var wire = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now)
        wire[20] ^= 1
        guard case .rejected(.headerAuthentication, .drain) = run(wire, table: t).0 else { return XCTFail() }
        var wire2 = try AEADHeader.seal(request(), cmdKey: alice.cmdKey, time: now)
        wire2[60] ^= 1
        guard case .rejected(.headerAuthentication, .drain) = run(wire2, table: t).0 else { return XCTFail() }
    }

    func testSecurityChecks() throws {
        let t = try table()
        for (code, expectClose) in [(Security.auto, true), (.aes128GCM, false), (.none, false), (.zero, false), (.legacy, false)] {
            let wire = try AEADHeader.seal(request(security: code), cmdKey: alice.cmdKey, time: now)
            let o = run(wire, table: t).0
            if expectClose {
                guard case .rejected(.unsupportedSecurity(2), .close) = o else { return XCTFail("\(code)") }
            } else {
                XCTAssertNotNil(accepted(o), "\(code)")
            }
        }
        for code in [Security.none, .zero, .legacy, .unknown] {
            let wire = try AEADHeader.seal(request(security: code), cmdKey: alice.cmdKey, time: now)
            guard case .rejected(.insecureSecurityDisallowed, .close) = run(wire, table: t, disableInsecure: true).0 else {
                return XCTFail("\(code)")
            }
        }
        var h = request()
        h.securityCode = 9
        guard case .rejected(.unsupportedSecurity(9), .close) = run(try AEADHeader.seal(h, cmdKey: alice.cmdKey, time: now), table: t).0
        else { return XCTFail() }
        h = request()
        h.command = 7
        guard case .rejected(.unsupportedCommand(7), .close) = run(try AEADHeader.seal(h, cmdKey: alice.cmdKey, time: now), table: t).0
        else { return XCTFail() }
    }

    func testIPLiteralDomainBecomesIP() throws {
        let t = try table()
        let wire = try AEADHeader.seal(request(address: .domain("127.0.0.1")), cmdKey: alice.cmdKey, time: now)
        XCTAssertEqual(accepted(run(wire, table: t).0)?.header.address, .ipv4([127, 0, 0, 1]))
    }

    func testLegacyHeaderWithPrimaryAndAlterIDs() throws {
        let t = try table(bobAlterId: 4)
        let alters = bob.alterIDs(4)
        for (i, authID) in ([bob.bytes] + alters).enumerated() {
            let h = request(security: .aes128GCM)
            let skew = Int64([-30, 29, 0, -100, 110][i])
            let wire = try LegacyHeader.seal(h, primary: bob, authID: authID, time: now + skew) + [9, 9]
            for drip in [false, true] {
                let (o, _) = run(wire, table: t, dripFeed: drip)
                let a = try XCTUnwrap(accepted(o), "alter \(i) drip \(drip)")
                XCTAssertTrue(a.legacy)
                XCTAssertNil(a.skew, "legacy headers carry no AEAD timestamp")
                XCTAssertEqual(a.header, h)
                XCTAssertEqual(a.user.index, 1)
            }
        }
        // Alice has alterId 0: her legacy header is refused like an unknown user.
        let wire = try LegacyHeader.seal(request(), primary: alice, authID: alice.bytes, time: now)
        guard case .rejected(.unknownUser, .drain) = run(wire, table: t).0 else { return XCTFail() }
    }

    func testLegacyBadChecksumTaintsAndDrains() throws {
        let t = try table(bobAlterId: 1)
        var wire = try LegacyHeader.seal(request(), primary: bob, authID: bob.bytes, time: now)
        wire[wire.count - 1] ^= 0xFF
        guard case .rejected(.badChecksum, .drain) = run(wire, table: t).0 else { return XCTFail() }
        // The same auth value is now refused.
        let again = try LegacyHeader.seal(request(), primary: bob, authID: bob.bytes, time: now)
        guard case .rejected(.unknownUser, .drain) = run(again, table: t).0 else { return XCTFail() }
    }

    func testHostileInputsNeverCrash() throws {
        let t = try table(bobAlterId: 2)
        for n in [0, 1, 15, 16, 17, 41, 42, 58, 100, 400, 4000] {
            for _ in 0..<30 { _ = run(SecureRandom.bytes(n), table: t) }
        }
    }

    /// Regression (issue 7): an AuthID whose timestamp is far from now (Int64.min: 16 bytes anyone
    /// who knows a user id can send) overflowed the skew arithmetic and trapped the worker. Every
    /// extreme must be an ordinary rejection with a drain: clock skew when the time is within the
    /// matcher's loose window (years), an unknown user beyond it; with and without the AES-NI scan.
    func testExtremeTimestampsAreRejectedNotTrapped() throws {
        for accelerated in [false, AuthIDMatcher.hasAESNI] {
            let t = try table(accelerated: accelerated)
            let cases: [(Int64, Int64?)] = [
                (.min, nil), (.min + 1, nil), (-1, nil), (0, nil), (now - 121, -121), (now + 121, 121),
                (now - (1 << 26), -(1 << 26)), (now + (1 << 26) + 1, nil), (.max, nil), (.max - 1, nil),
            ]
            for (time, expected) in cases {
                let wire = try AEADHeader.seal(request(), cmdKey: bob.cmdKey, time: time)
                switch run(wire, table: t).0 {
                case .rejected(.clockSkew(let s), .drain): XCTAssertEqual(s, expected, "time \(time)")
                case .rejected(.unknownUser, .drain): XCTAssertNil(expected, "time \(time)")
                default: XCTFail("time \(time), accelerated \(accelerated)")
                }
            }
            // The server's own clock at the extremes too.
            for clock in [Int64.min, Int64.max, 0] {
                let wire = try AEADHeader.seal(request(), cmdKey: bob.cmdKey, time: clock == 0 ? .max : 0)
                guard case .rejected(.unknownUser, .drain) = run(wire, table: t, at: clock).0 else {
                    return XCTFail("clock \(clock)")
                }
            }
        }
        XCTAssertEqual(ServerHandshake.skew(.min, .max), .min)
        XCTAssertEqual(ServerHandshake.skew(.max, .min), .max)
        XCTAssertEqual(ServerHandshake.skew(5, 7), -2)
    }

    /// A flood of fresh, valid handshakes fills the replay filter and the session history; neither
    /// may then refuse a genuine user (both rotate early instead), and replays are still caught.
    func testFullReplayFilterAndSessionHistoryDoNotTurnUsersAway() throws {
        let t = try table()
        let replay = GenerationalReplayFilter(capacity: 8)
        let sessions = SessionHistory(capacity: 8)
        func handshake(_ wire: [UInt8]) -> ServerHandshake.Outcome {
            var hs = ServerHandshake(users: t, replay: replay, sessions: sessions, disableInsecure: false)
            var buf = allocator.buffer(capacity: wire.count)
            buf.writeBytes(wire)
            return hs.feed(&buf, now: now)
        }
        var last: [UInt8] = []
        for _ in 0..<50 {
            last = try AEADHeader.seal(request(), cmdKey: bob.cmdKey, time: now)
            XCTAssertNotNil(accepted(handshake(last)))
        }
        guard case .rejected(.replay, .drain) = handshake(last) else { return XCTFail("a replay is still caught") }
        XCTAssertLessThanOrEqual(sessions.count, 16)
        XCTAssertGreaterThan(replay.earlyRotations, 0)
    }

    /// The legacy taint set is bounded by the live auth table: taints of values that left the
    /// ±120 s window are forgotten as the window moves, and unknown values are never recorded.
    func testLegacyTaintsAreBoundedByTheWindow() throws {
        let t = try table(bobAlterId: 1)
        for second in 0..<30 as Range<Int64> {
            var wire = try LegacyHeader.seal(request(), primary: bob, authID: bob.bytes, time: now + second * 10)
            wire[wire.count - 1] ^= 0xFF
            _ = run(wire, table: t, at: now + second * 10)
        }
        XCTAssertLessThanOrEqual(t.taintedCount, 25, "only taints inside the current window remain")
        t.taint(AuthIDKey(hi: 1, lo: 2))
        XCTAssertLessThanOrEqual(t.taintedCount, 25)
    }
}
