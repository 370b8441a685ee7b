import XCTest
@testable import Shared

/// `"vmessd": {"limits": ...}`: defaults, values taken, and out-of-range values refused with the
/// key named (the end-to-end side is HostileClientTests.testConfigRefusesOutOfRangeLimits).
final class ClientLimitsConfigTests: XCTestCase {
    func parse(_ limits: String?) throws -> ClientLimits {
        try ConfigParser.parse(text: """
            {\(limits.map { #""vmessd": {"limits": \#($0)},"# } ?? "")
             "inbounds": [{"port": 1080, "protocol": "vmess", "settings": {"clients": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]}}],
             "outbounds": [{"protocol": "freedom"}]}
            """, sourceFile: "config.json").daemon.limits
    }

    func testDefaults() throws {
        let limits = try parse(nil)
        XCTAssertEqual(limits, ClientLimits())
        XCTAssertEqual(limits.waitingBytesPerWorker, 256 << 20)
        XCTAssertEqual(limits.connectionsPerWorker, 16_384)
    }

    func testValuesAreTaken() throws {
        let limits = try parse(#"{"connectionsPerWorker": 100, "connectionsPerSource": 10, "udpDatagramToClient": 2038, "waitingBytesPerWorker": 8388608}"#)
        XCTAssertEqual(limits.connectionsPerWorker, 100)
        XCTAssertEqual(limits.connectionsPerSource, 10)
        XCTAssertEqual(limits.udpDatagramToClient, 2038)
        XCTAssertEqual(limits.waitingBytesPerWorker, 8 << 20)
    }

    func testOutOfRangeIsAnErrorNamingTheKey() {
        for (limits, key) in [(#"{"waitingBytesPerWorker": 65536}"#, "waitingBytesPerWorker"),
                              (#"{"waitingBytesPerWorker": "1G"}"#, "waitingBytesPerWorker"),
                              (#"{"connectionsPerWorker": 0}"#, "connectionsPerWorker"),
                              (#"{"keptBytes": 1}"#, "keptBytes")] {
            XCTAssertThrowsError(try parse(limits), limits) { error in
                XCTAssertTrue("\(error)".contains(key), "\(limits): \(error)")
                XCTAssertTrue("\(error)".contains("vmessd.limits"), "\(limits): \(error)")
            }
        }
    }
}
