// A real DNS server for the resolver tests: Debian's dnsmasq, on 127.0.0.1 and a free port (UDP and
// TCP), answering only from what the test gives it (no upstream, no /etc/hosts, no config file).

import Foundation

public final class DNSMasq {
    public let port: UInt16
    public let process: ManagedProcess

    /// dnsmasq's path: `DNSMASQ_BIN`, else /usr/sbin/dnsmasq (scripts/install-deps.sh installs it).
    public static func binary() throws -> String {
        let path = ProcessInfo.processInfo.environment["DNSMASQ_BIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/sbin/dnsmasq"
        return try Tool.require(path, install: "apt-get install dnsmasq")
    }

    /// `arguments`: records, e.g. `--address=/test/127.0.0.1`, `--addn-hosts=FILE`, `--local-ttl=N`.
    /// Returns once the server accepts TCP on its port (it opens UDP first). A free UDP port may be
    /// taken for TCP (dnsmasq needs both and exits with status 2): then another port is tried.
    public init(_ arguments: [String], logDirectory: URL, name: String = "dnsmasq") throws {
        (port, process) = try ManagedProcess.startOnFreePort("dnsmasq", pickPort: FreePort.udp) { port, attempt in
            try ManagedProcess(name: "\(name)-\(attempt)", executable: try Self.binary(), arguments: [
                "--keep-in-foreground", "--log-facility=-", "--port=\(port)", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--bind-interfaces", "--listen-address=127.0.0.1", "--pid-file=",
            ] + arguments, logDirectory: logDirectory)
        }
    }

    public func stop() { process.terminate(grace: 2) }

    /// Freezes / resumes the server (SIGSTOP / SIGCONT): it stays bound but answers nothing.
    public func pause() { kill(process.pid, SIGSTOP) }
    public func resume() { kill(process.pid, SIGCONT) }

    public var log: String { (try? String(contentsOf: process.stderrURL, encoding: .utf8)) ?? "" }

    deinit { stop() }
}
