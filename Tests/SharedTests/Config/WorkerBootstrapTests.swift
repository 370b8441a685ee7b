// The worker's bootstrap: what a supervisor writes, a worker of the same build reads back whole, for
// every kind of config there is; what a supervisor of another build writes (keys this build does not
// know, or without keys it needs) is refused as a BuildMismatch, never half-read.

import Foundation
import Shared
import XCTest

final class WorkerBootstrapTests: XCTestCase {
    private static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every config the repository ships or tests with: the shipped examples, the operator configs
    /// and the parser's fixtures.
    private func allConfigFiles() throws -> [URL] {
        let fm = FileManager.default
        var files: [URL] = []
        for dir in ["deploy/examples", "deploy/examples/operators", "Tests/SharedTests/Fixtures/config"] {
            let url = Self.packageRoot.appendingPathComponent(dir)
            for name in try fm.contentsOfDirectory(atPath: url.path).sorted() where name.hasSuffix(".json") || name.hasSuffix(".jsonc") {
                files.append(url.appendingPathComponent(name))
            }
        }
        return files
    }

    private func bootstrap(_ config: Config) -> WorkerBootstrap {
        WorkerBootstrap(workerID: 1, generation: 3, config: config, listeners: [.init(inbound: 0, fd: -1)],
                        controlFD: 4, sharedMemorySlot: 2)
    }

    /// No false alarm: a worker reads what its own build's supervisor wrote, whole, for every config.
    func testSameBuildReadsEveryConfigBack() throws {
        var parsed = 0
        for file in try allConfigFiles() {
            let config: Config
            do {
                config = try ConfigParser.parse(fileAt: file.path)
            } catch {
                // Those that need geodata or certificate files this unit test does not have:
                // OperatorConfigTests starts each of them with real workers, through this check.
                continue
            }
            parsed += 1
            let written = bootstrap(config)
            XCTAssertEqual(try WorkerBootstrap.decode(try written.encoded()), written, file.lastPathComponent)
        }
        XCTAssertGreaterThanOrEqual(parsed, 8, "the configs this test reads back")
        let demo = bootstrap(ConfigParser.demo(uuid: "b831381d-6324-4d53-ad4f-8cda48b30811", port: 10086))
        XCTAssertEqual(try WorkerBootstrap.decode(try demo.encoded()), demo)
    }

    /// A newer supervisor's settings: refused, naming them, instead of silently dropped.
    func testKeysThisBuildDoesNotKnowAreRefusedByName() throws {
        let written = bootstrap(ConfigParser.demo(uuid: "b831381d-6324-4d53-ad4f-8cda48b30811", port: 10086))
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(written.encoded())) as? [String: Any])
        var config = try XCTUnwrap(object["config"] as? [String: Any])
        config["settingOfALaterRelease"] = ["limit": 5]
        var inbounds = try XCTUnwrap(config["inbounds"] as? [[String: Any]])
        inbounds[0]["alsoNew"] = true
        config["inbounds"] = inbounds
        object["config"] = config
        let bytes = Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        XCTAssertThrowsError(try WorkerBootstrap.decode(bytes)) { error in
            guard let mismatch = error as? WorkerBootstrap.BuildMismatch else { return XCTFail("\(error)") }
            let text = "\(mismatch)"
            XCTAssertTrue(text.contains("config.inbounds[].alsoNew, config.settingOfALaterRelease, config.settingOfALaterRelease.limit"), text)
            XCTAssertTrue(text.contains("must be installed together"), text)
        }
    }

    /// An older supervisor's bootstrap without a field this build requires: refused as a mismatch.
    func testMissingKeysAreAMismatch() throws {
        let written = bootstrap(ConfigParser.demo(uuid: "b831381d-6324-4d53-ad4f-8cda48b30811", port: 10086))
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(written.encoded())) as? [String: Any])
        object.removeValue(forKey: "generation")
        let bytes = Array(try JSONSerialization.data(withJSONObject: object))
        XCTAssertThrowsError(try WorkerBootstrap.decode(bytes)) { error in
            XCTAssertTrue(error is WorkerBootstrap.BuildMismatch, "\(error)")
            XCTAssertTrue("\(error)".contains("cannot read it"), "\(error)")
        }
        // Key paths: arrays share one path, order and counts do not matter.
        XCTAssertEqual(try JSONKeyPaths.of(Data(#"{"a":[{"b":1},{"c":[1,{"d":2}]}],"e":{}}"#.utf8)),
                       ["a", "a[].b", "a[].c", "a[].c[].d", "e"])
    }
}
