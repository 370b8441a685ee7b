// The built-in resolver's DNS over HTTPS servers against a real DoH server: Debian's dnsdist (HTTP/2
// over TLS, h2o inside) in front of dnsmasq, with a certificate the test makes for localhost and
// 127.0.0.1 and trusts through SSL_CERT_FILE, as an operator would for a private CA.

import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared
import TestSupport
import XCTest

@testable import Worker

final class DNSHTTPSResolverTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var workDir: URL!
    private var backend: DNSMasq!
    private var doh: DNSDist!
    private var certificate: URL!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        workDir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vmessd-doh-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        let hosts = workDir.appendingPathComponent("big.hosts")
        try (1...40).map { "10.0.0.\($0) big.test\n" }.joined().write(to: hosts, atomically: true, encoding: .utf8)
        backend = try DNSMasq(["--address=/test/127.0.0.1", "--local=/invalid/", "--addn-hosts=\(hosts.path)"], logDirectory: workDir)
        let (cert, key) = try SelfSignedCertificate.make(names: "DNS:localhost,IP:127.0.0.1", name: "doh", in: workDir)
        certificate = cert
        doh = try DNSDist(backend: backend.port, certificate: cert.path, key: key.path, logDirectory: workDir)
        setenv("SSL_CERT_FILE", cert.path, 1)
    }

    override func tearDownWithError() throws {
        unsetenv("SSL_CERT_FILE")
        doh?.stop()
        backend?.stop()
        try group.syncShutdownGracefully()
        try? FileManager.default.removeItem(at: workDir)
    }

    private func resolver(_ servers: [DNSServerConfig.Address]) throws -> DNSResolver {
        try DNSResolver(DNSConfig(servers: servers), loop: group.next())
    }

    private func local(_ host: String, port: UInt16? = nil, path: String = "/dns-query") -> DNSServerConfig.Address {
        .https(host: host, port: port ?? doh.port, path: path, routed: false)
    }

    /// Established TCP connections from this process to the DoH port.
    private func connectionsToServer() throws -> Int {
        // procfs reports size 0 and hands the table out a page at a time: read to the end.
        let file = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/net/tcp"))
        defer { try? file.close() }
        let table = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        let port = String(format: "%04X", doh.port)
        // rem_address "0100007F:PORT", state 01 (ESTABLISHED).
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[2] == "0100007F:\(port)" && fields[3] == "01"
        }.count
    }

    func testAnswersOverOneSharedConnection() throws {
        let dns = try resolver([local("127.0.0.1")])
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.lookup("nothing.invalid", family: .any).wait(), [], "NXDOMAIN is no address")
        let big = try dns.lookup("big.test", family: .ipv4).wait()
        XCTAssertEqual(Set(big), Set((1...40).map { [10, 0, 0, UInt8($0)] }), "an answer larger than 512 bytes, whole")
        // Questions at once are streams of the same connection.
        let many = (0..<20).map { dns.lookup("n\($0).test", family: .ipv4) }
        for answer in many { XCTAssertEqual(try answer.wait(), [[127, 0, 0, 1]]) }
        let count = try connectionsToServer()
        XCTAssertEqual(count, 1, "one HTTP/2 connection carried every question")
    }

    func testServerByNameIsVerifiedAgainstThatName() throws {
        let dns = try resolver([local("localhost")])
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
    }

    /// No answer from a server whose certificate is not trusted, or not for the host in the URL, or at
    /// a path it does not serve: each fails the question (SERVFAIL, nothing resolved), never answers.
    func testRefusedCertificatesAndPathsGiveNoAnswer() throws {
        unsetenv("SSL_CERT_FILE")
        let untrusted = try resolver([local("127.0.0.1")])
        XCTAssertEqual(try untrusted.resolve("echo.test", family: .ipv4).wait(), .init(addresses: [], rcode: .serverFailure))

        let (other, otherKey) = try SelfSignedCertificate.make(names: "DNS:other.example", name: "other", in: workDir)
        setenv("SSL_CERT_FILE", other.path, 1)
        let wrongName = try DNSDist(backend: backend.port, certificate: other.path, key: otherKey.path, logDirectory: workDir, name: "dnsdist-other")
        defer { wrongName.stop() }
        let mismatched = try resolver([local("127.0.0.1", port: wrongName.port)])
        XCTAssertEqual(try mismatched.resolve("echo.test", family: .ipv4).wait(), .init(addresses: [], rcode: .serverFailure))

        setenv("SSL_CERT_FILE", certificate.path, 1)
        let wrongPath = try resolver([local("127.0.0.1", path: "/not-dns")])
        XCTAssertEqual(try wrongPath.resolve("echo.test", family: .ipv4).wait(), .init(addresses: [], rcode: .serverFailure))
        // The next server answers.
        let fallback = try resolver([local("127.0.0.1", path: "/not-dns"), local("127.0.0.1")])
        XCTAssertEqual(try fallback.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
    }

    /// A server that stops answering is one warning, then debug lines, and one info line once it
    /// answers again.
    func testAServerThatStopsAnsweringIsWarnedAboutOnce() throws {
        let dns = try resolver([local("127.0.0.1")])
        let lines = CapturedLog()
        var logger = Logger(label: "test") { _ in lines }
        logger.logLevel = .debug
        dns.logger = logger
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        kill(doh.process.pid, SIGSTOP)
        try waitUntilStopped(doh.process.pid)
        let silent = [dns.lookup("one.test", family: .ipv4), dns.lookup("two.test", family: .ipv4)]
        for lookup in silent { XCTAssertEqual(try lookup.wait(), []) }
        kill(doh.process.pid, SIGCONT)
        XCTAssertEqual(try dns.lookup("three.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(lines.entries.map(\.level), [.warning, .debug, .info], "\(lines.entries)")
        XCTAssertEqual(lines.entries.first?.text, "DNS server failed; the next one is asked (more failures of it at debug level until it answers) error=no answer in time server=dns.servers[0]")
    }

    /// SIGSTOP takes effect when each thread next runs; wait until every thread of `pid` is stopped
    /// ("T" in its stat), so no question sent afterwards can still be answered.
    private func waitUntilStopped(_ pid: pid_t) throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let stopped = tasks.allSatisfy { task in
                guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/task/\(task)/stat"),
                      let text = String(data: stat, encoding: .utf8), let close = text.lastIndex(of: ")") else { return false }
                return text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
            }
            if !tasks.isEmpty && stopped { return }
            usleep(10_000)
        }
        XCTFail("process \(pid) did not stop")
    }

    /// `https://` questions go the way routing gives: here an outbound that carries them elsewhere
    /// (a freedom redirected to the DoH server), so the resolver's own sockets are not used.
    func testRoutedQuestionsAreCarriedByTheOutboundRoutingPicks() throws {
        var redirect = FreedomSettings()
        redirect.redirectHost = "127.0.0.1"
        redirect.redirectPort = Int(doh.port)
        let counters = WorkerCounters()
        let proxy = CountingOutbound(FreedomOutbound(tag: "proxy", settings: redirect, counters: counters, logger: Logger(label: "test")))
        let dns = try resolver([.https(host: "localhost", port: 443, path: "/dns-query", routed: true)])
        var asked: [Destination] = []
        dns.route = { destination in
            asked.append(destination)
            return proxy
        }
        dns.proxyDial = { outbound in
            try ProxyDial(through: outbound, tag: "dns", policy: PolicyConfig(), counters: counters, logger: Logger(label: "test"))
        }
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.lookup("other.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.loop.submit { asked.map(\.description) }.wait(), ["tcp:localhost:443", "tcp:localhost:443"])
        XCTAssertEqual(try dns.loop.submit { proxy.opened.map(\.description) }.wait(), ["tcp:localhost:443"],
                       "both questions on one connection through the outbound")
    }
}

/// Log lines a test reads back: level and the message with its metadata (sorted keys).
final class CapturedLog: LogHandler, @unchecked Sendable {
    struct Entry { var level: Logger.Level; var text: String }
    private let lock = NSLock()
    private var stored: [Entry] = []
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    var entries: [Entry] { lock.withLock { stored } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let text = ([event.message.description] + fields).joined(separator: " ")
        lock.withLock { stored.append(Entry(level: event.level, text: text)) }
    }
}
