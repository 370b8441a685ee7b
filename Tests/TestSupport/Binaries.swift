// Where the binaries under test and the peers live.

import Foundation
import XCTest

public enum VMessdBinaries {
    /// `<package root>`, from this file's location (Tests/TestSupport/Binaries.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `VMESSD_BIN_DIR`; else the directory of the running test bundle (right for any
    /// `--scratch-path`: `swift test` builds the executables next to it); else `.build/debug`.
    public static var candidateDirectories: [URL] {
        if let env = ProcessInfo.processInfo.environment["VMESSD_BIN_DIR"], !env.isEmpty {
            return [URL(fileURLWithPath: env)]
        }
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            dirs.append(bundle.bundleURL.deletingLastPathComponent())
        }
        dirs.append(packageRoot.appendingPathComponent(".build/debug"))
        return dirs
    }

    public static func directory() throws -> URL {
        let fm = FileManager.default
        for dir in candidateDirectories {
            if fm.isExecutableFile(atPath: dir.appendingPathComponent("vmessd").path),
               fm.isExecutableFile(atPath: dir.appendingPathComponent("vmessd-worker").path) {
                return dir
            }
        }
        let looked = candidateDirectories.map(\.path).joined(separator: ", ")
        throw HarnessError("vmessd binaries not found (looked for vmessd and vmessd-worker in: \(looked)). "
                           + "Run `swift build` first (or set VMESSD_BIN_DIR to the directory holding them).")
    }

    public static func vmessd() throws -> String { try directory().appendingPathComponent("vmessd").path }
    public static func worker() throws -> String { try directory().appendingPathComponent("vmessd-worker").path }
}

/// External tools: a skip on a workstation that lacks them, a failure in CI (CI=true), where
/// scripts/install-deps.sh must have installed them.
public enum Tool {
    public static var isCI: Bool {
        let ci = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return ci == "true" || ci == "1"
    }

    public static func require(_ path: String, install: String) throws -> String {
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        let message = "\(path) not installed (\(install))"
        if isCI { throw HarnessError(message + " — required when CI=true") }
        throw XCTSkip(message)
    }

    /// The reference binary: `V2RAY_BIN`, else /usr/bin/v2ray.
    public static func v2ray() throws -> String {
        let path = ProcessInfo.processInfo.environment["V2RAY_BIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/v2ray"
        return try require(path, install: "apt-get install v2ray; or set V2RAY_BIN")
    }

    public static func socketActivate() throws -> String {
        try require("/usr/bin/systemd-socket-activate", install: "apt-get install systemd")
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
