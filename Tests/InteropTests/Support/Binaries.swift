// Where the binaries under test and the reference peer live.

import Foundation
import XCTest

enum VMessdBinaries {
    /// `<package root>`, from this file's location (Tests/InteropTests/Support/Binaries.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Candidate directories, in order: `VMESSD_BIN_DIR`; the directory of the running test bundle
    /// (right for any `--scratch-path`, since `swift test` builds the executables next to it);
    /// `<package root>/.build/debug`.
    static var candidateDirectories: [URL] {
        var dirs: [URL] = []
        if let env = ProcessInfo.processInfo.environment["VMESSD_BIN_DIR"], !env.isEmpty {
            return [URL(fileURLWithPath: env)]
        }
        if let exe = Bundle.main.executableURL {
            dirs.append(exe.deletingLastPathComponent())
        }
        dirs.append(packageRoot.appendingPathComponent(".build/debug"))
        return dirs
    }

    /// The directory holding both `vmessd` and `vmessd-worker`, or a failure that says how to get them.
    static func directory() throws -> URL {
        let fm = FileManager.default
        for dir in candidateDirectories {
            if fm.isExecutableFile(atPath: dir.appendingPathComponent("vmessd").path),
               fm.isExecutableFile(atPath: dir.appendingPathComponent("vmessd-worker").path) {
                return dir
            }
        }
        let looked = candidateDirectories.map(\.path).joined(separator: ", ")
        throw HarnessError("""
            vmessd binaries not found (looked for vmessd and vmessd-worker in: \(looked)). \
            Run `swift build` first (or set VMESSD_BIN_DIR to the directory holding them).
            """)
    }

    static func vmessd() throws -> String { try directory().appendingPathComponent("vmessd").path }
}

enum V2Ray {
    /// `V2RAY_BIN`, else /usr/bin/v2ray.
    static var path: String {
        if let env = ProcessInfo.processInfo.environment["V2RAY_BIN"], !env.isEmpty { return env }
        return "/usr/bin/v2ray"
    }

    static var isCI: Bool {
        let ci = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return ci == "true" || ci == "1"
    }

    /// The reference binary, or: a skip on a developer machine, a failure in CI (where
    /// scripts/install-deps.sh must have installed it, so a skip would hide a broken setup).
    static func require() throws -> String {
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        let message = "v2ray not installed: apt-get install v2ray (looked at \(path); set V2RAY_BIN to override)"
        if isCI { throw HarnessError(message + " — required when CI=true") }
        throw XCTSkip(message)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
