import XCTest
@testable import Shared

/// `"vmessd": {"userLimits": ...}`: levels and users, a user's own entry over its level's, 0 lifting
/// a limit, and every mistake an error that names the key.
final class UserLimitConfigTests: XCTestCase {
    func parse(_ limits: String) throws -> UserLimitPolicy {
        try ConfigParser.parse(text: """
            {"vmessd": {"userLimits": \(limits)},
             "inbounds": [{"port": 1080, "protocol": "vmess", "settings": {"clients": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]}}],
             "outbounds": [{"protocol": "freedom"}]}
            """, sourceFile: "config.json").daemon.userLimits
    }

    func testLevelsAndUsersMerge() throws {
        let policy = try parse("""
            {"levels": {"0": {"connections": 8, "sourceIPs": 2, "uplinkRate": 100000, "downlinkRate": 400000},
                        "1": {"connections": 100}},
             "users": {"alice@example.com": {"sourceIPs": 1, "downlinkRate": 0, "burst": 65536},
                       "bob@example.com": {"connections": 3}}}
            """)
        let alice = policy.limits(email: "alice@example.com", level: 0)
        XCTAssertEqual(alice.connections, 8)
        XCTAssertEqual(alice.sourceIPs, 1)
        XCTAssertEqual(alice.uplinkRate, 100_000)
        XCTAssertEqual(alice.downlinkRate, 0, "0 lifts the level's limit")
        XCTAssertEqual(alice.burst(for: alice.uplinkRate), 65536)
        let carol = policy.limits(email: "carol@example.com", level: 0)
        XCTAssertEqual(carol.sourceIPs, 2)
        XCTAssertEqual(carol.burst(for: 400_000), 400_000, "default burst: a second's worth")
        XCTAssertEqual(carol.burst(for: 1000), UserLimits.minimumBurst)
        // A user's own entry applies at any level; a level without limits leaves only that.
        let bob = policy.limits(email: "bob@example.com", level: 7)
        XCTAssertEqual(bob.connections, 3)
        XCTAssertEqual(bob.sourceIPs, 0)
        XCTAssertTrue(policy.limits(email: nil, level: 7).isUnlimited)
        XCTAssertEqual(policy.limits(email: nil, level: 1).connections, 100)
    }

    func testMistakesAreErrorsNamingTheKey() {
        let cases: [(String, String)] = [
            (#"{"levels": {"0": {"devices": 2}}}"#, "devices"),
            (#"{"levels": {"x": {"connections": 2}}}"#, "level key"),
            (#"{"levels": {"0": {"sourceIPs": 17}}}"#, "sourceIPs"),
            (#"{"levels": {"0": {"connections": -1}}}"#, "connections"),
            (#"{"levels": {"0": {"burst": 100}}}"#, "burst"),
            (#"{"users": {"": {"connections": 1}}}"#, "email"),
            (#"{"groups": {}}"#, "groups"),
        ]
        for (limits, expected) in cases {
            XCTAssertThrowsError(try parse(limits), limits) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(limits): \(error)")
            }
        }
    }
}
