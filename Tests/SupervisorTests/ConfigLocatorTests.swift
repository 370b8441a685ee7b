// The order `vmessd run` looks for a config in is part of the command-line contract.

import XCTest
@testable import Supervisor

final class ConfigLocatorTests: XCTestCase {
    private func locator(existing: Set<String>) -> ConfigLocator {
        ConfigLocator(fileExists: { existing.contains($0) })
    }

    func testExplicitPathWinsEvenWhenMissing() {
        XCTAssertEqual(locator(existing: ["./config.json"]).locate(explicit: "/srv/x.json"), .file("/srv/x.json"))
    }

    func testWorkingDirectoryBeforeEtc() {
        XCTAssertEqual(locator(existing: ["./config.json", "/etc/vmessd/config.json"]).locate(explicit: nil),
                       .file("./config.json"))
    }

    func testEtcWhenNoLocalFile() {
        XCTAssertEqual(locator(existing: ["/etc/vmessd/config.json"]).locate(explicit: nil),
                       .file("/etc/vmessd/config.json"))
    }

    func testDemoWhenNothingExists() {
        XCTAssertEqual(locator(existing: []).locate(explicit: nil), .demo)
    }

    func testRealFileCheckRejectsDirectories() {
        XCTAssertFalse(ConfigLocator.regularFileExists("/"))
        XCTAssertFalse(ConfigLocator.regularFileExists("/nonexistent/config.json"))
        XCTAssertTrue(ConfigLocator.regularFileExists("/proc/self/status"))
    }
}
