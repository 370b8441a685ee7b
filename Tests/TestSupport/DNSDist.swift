// A real DNS over HTTPS server for the resolver tests: Debian's dnsdist, serving DoH (HTTP/2 over
// TLS) on 127.0.0.1 and a free port with the test's certificate, and passing every question to a
// backend the test runs (dnsmasq). No console, no carbon, no security polling.

import Foundation

public final class DNSDist {
    public let port: UInt16
    public let process: ManagedProcess

    /// dnsdist's path: `DNSDIST_BIN`, else /usr/bin/dnsdist (scripts/install-deps.sh installs it).
    public static func binary() throws -> String {
        let path = ProcessInfo.processInfo.environment["DNSDIST_BIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/dnsdist"
        return try Tool.require(path, install: "apt-get install dnsdist")
    }

    /// DoH at `path` on 127.0.0.1, with `certificate` and `key` (PEM files), in front of the DNS
    /// server at 127.0.0.1:`backend`. Returns once the port accepts TCP.
    public init(backend: UInt16, certificate: String, key: String, path: String = "/dns-query",
                logDirectory: URL, name: String = "dnsdist") throws {
        (port, process) = try ManagedProcess.startOnFreePort("dnsdist", pickPort: FreePort.tcp) { port, attempt in
            let config = logDirectory.appendingPathComponent("\(name)-\(attempt).conf")
            try """
                setSecurityPollSuffix("")
                newServer({address="127.0.0.1:\(backend)", healthCheckMode="up"})
                addDOHLocal("127.0.0.1:\(port)", "\(certificate)", "\(key)", "\(path)", {reusePort=false})
                """.write(to: config, atomically: true, encoding: .utf8)
            return try ManagedProcess(name: "\(name)-\(attempt)", executable: try Self.binary(),
                                      arguments: ["--supervised", "--disable-syslog", "-C", config.path], logDirectory: logDirectory)
        }
    }

    public func stop() { process.terminate(grace: 2) }

    public var log: String {
        ((try? String(contentsOf: process.stdoutURL, encoding: .utf8)) ?? "") + ((try? String(contentsOf: process.stderrURL, encoding: .utf8)) ?? "")
    }

    deinit { stop() }
}
