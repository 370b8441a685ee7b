// The built-in resolver over real sockets: against Debian's dnsmasq (answers, NXDOMAIN, a UDP answer
// too big for 512 bytes asked again over TCP, TTLs), and against a scripted server on loopback for what
// dnsmasq cannot be made to do (forged and mismatched replies, silence, slow answers).

import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared
import TestSupport
import XCTest

@testable import Worker

final class DNSResolverTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var workDir: URL!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        workDir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vmessd-dns-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try group.syncShutdownGracefully()
        try? FileManager.default.removeItem(at: workDir)
    }

    private func dnsmasq(_ arguments: [String]) throws -> DNSMasq {
        try DNSMasq(["--address=/test/127.0.0.1", "--local=/invalid/"] + arguments, logDirectory: workDir)
    }

    private func resolver(_ servers: [DNSServerConfig.Address], configure: (inout DNSConfig) -> Void = { _ in },
                          maximumInFlight: Int = DNSResolver.defaultMaximumInFlight) throws -> DNSResolver {
        var config = DNSConfig(servers: servers)
        configure(&config)
        return try DNSResolver(config, loop: group.next(), maximumInFlight: maximumInFlight)
    }

    private func loopback(_ port: UInt16) -> DNSServerConfig.Address { .udp(address: [127, 0, 0, 1], port: port) }
}

extension DNSConfig {
    init(servers: [DNSServerConfig.Address]) {
        self.init()
        self.servers = servers.enumerated().map { DNSServerConfig(address: $1, jsonPath: "dns.servers[\($0)]") }
    }
}

extension DNSResolverTests {

    // MARK: dnsmasq

    func testAnswersFromDnsmasq() throws {
        let server = try dnsmasq([])
        let dns = try resolver([loopback(server.port)])
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.lookup("ECHO.Test.", family: .any).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.lookup("nothing.invalid", family: .any).wait(), [], "NXDOMAIN is no address")
        XCTAssertEqual(try dns.resolve("nothing.invalid", family: .ipv4).wait().rcode, .nameError)
        XCTAssertEqual(try dns.lookup("192.0.2.7", family: .any).wait(), [[192, 0, 2, 7]], "a literal is itself")
        XCTAssertEqual(dns.inFlightCount, 0)
    }

    func testHostsComeFirst() throws {
        let server = try dnsmasq([])
        let dns = try resolver([loopback(server.port)]) { config in
            var names = DomainSet()
            names.full = ["echo.test"]
            config.hosts = [DNSHostEntry(domains: names, target: .addresses([[192, 0, 2, 1]]))]
        }
        XCTAssertEqual(try dns.lookup("echo.test", family: .any).wait(), [[192, 0, 2, 1]])
        XCTAssertEqual(try dns.lookup("other.test", family: .any).wait(), [[127, 0, 0, 1]])
    }

    func testTruncatedUDPAnswerIsAskedAgainOverTCP() throws {
        // 40 A records do not fit in 512 bytes: dnsmasq answers UDP with TC set and 30 of them.
        let hosts = workDir.appendingPathComponent("big.hosts")
        try (1...40).map { "10.0.0.\($0) big.test\n" }.joined().write(to: hosts, atomically: true, encoding: .utf8)
        let server = try dnsmasq(["--addn-hosts=\(hosts.path)"])
        let dns = try resolver([loopback(server.port)])
        let addresses = try dns.lookup("big.test", family: .ipv4).wait()
        XCTAssertEqual(Set(addresses), Set((1...40).map { [10, 0, 0, UInt8($0)] }), "all 40, so the TCP answer")
    }

    func testCacheHonoursTTL() throws {
        let server = try dnsmasq(["--local-ttl=2"])
        let dns = try resolver([loopback(server.port)])
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        server.pause()
        defer { server.resume() }
        let started = Date()
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]], "from the cache")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        Thread.sleep(forTimeInterval: 2.2)
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [], "expired; the server is silent")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2.2 + 3.5, "waited for both attempts")
    }

    func testLocalhostServerIsTheSystemResolver() throws {
        let dns = try resolver([.system])
        XCTAssertTrue(try dns.lookup("localhost", family: .ipv4).wait().contains([127, 0, 0, 1]))
        let none = try resolver([])
        XCTAssertTrue(try none.lookup("localhost", family: .ipv4).wait().contains([127, 0, 0, 1]))
    }

    func testExpectIPsAndSilentServersMoveOn() throws {
        let server = try dnsmasq([])
        let silent = try ScriptedDNSServer(group: group) { _, _ in [] }
        var config = DNSConfig()
        var filtered = DNSServerConfig(address: loopback(server.port), jsonPath: "dns.servers[1]")
        filtered.expectIPs = [IPSet(cidrs: [CIDR(address: [10, 0, 0, 0], prefix: 8)])]
        config.servers = [DNSServerConfig(address: loopback(silent.port), jsonPath: "dns.servers[0]"), filtered,
                          DNSServerConfig(address: .udp(address: [127, 0, 0, 1], port: server.port), jsonPath: "dns.servers[2]")]
        let dns = try DNSResolver(config, loop: group.next())
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(silent.queries.count, 2, "the silent server was asked twice (one retry) before moving on")
    }

    // MARK: routed queries

    /// V2Ray routes its DNS client's queries; so does the resolver (`route`). Here routing picks a
    /// freedom outbound that redirects to dnsmasq, so the server configured (TEST-NET 192.0.2.53, where
    /// nothing answers) is reached only if the query really goes through that outbound's link: UDP,
    /// and TCP for the truncated answer.
    func testQueriesGoThroughTheOutboundRoutingPicks() throws {
        let hosts = workDir.appendingPathComponent("big.hosts")
        try (1...40).map { "10.0.0.\($0) big.test\n" }.joined().write(to: hosts, atomically: true, encoding: .utf8)
        let server = try dnsmasq(["--addn-hosts=\(hosts.path)"])
        var redirect = FreedomSettings()
        redirect.redirectHost = "127.0.0.1"
        redirect.redirectPort = Int(server.port)
        let counters = WorkerCounters()
        let proxy = FreedomOutbound(tag: "proxy", settings: redirect, counters: counters, logger: Logger(label: "test"))
        XCTAssertFalse(DNSResolver.sendsDirectly(proxy))
        let counting = CountingOutbound(proxy)
        let dns = try resolver([.udp(address: [192, 0, 2, 53], port: 53)])
        var routed: [Destination] = []
        dns.route = { destination in
            routed.append(destination)
            return counting
        }
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try dns.lookup("other.test", family: .any).wait(), [[127, 0, 0, 1]])
        let big = try dns.lookup("big.test", family: .ipv4).wait()
        XCTAssertEqual(Set(big), Set((1...40).map { [10, 0, 0, UInt8($0)] }), "the TCP answer, through the link")
        XCTAssertEqual(try dns.loop.submit { routed.map(\.description) }.wait(), Array(repeating: "udp:192.0.2.53:53", count: 4))
        XCTAssertEqual(try dns.loop.submit { counting.opened.map(\.description) }.wait(), ["udp:192.0.2.53:53", "tcp:192.0.2.53:53"],
                       "four UDP questions share one link; the truncated one's TCP retry has its own")

        // A plain freedom sends queries straight to the server: the resolver's own sockets are used.
        XCTAssertTrue(DNSResolver.sendsDirectly(FreedomOutbound(tag: nil, settings: FreedomSettings(), counters: counters,
                                                                logger: Logger(label: "test"))))
    }

    /// `tcp+local://` servers are asked over TCP only (directly); `tcp://` ones through the routed link.
    func testTCPServers() throws {
        let server = try dnsmasq([])
        let local = try resolver([.tcp(address: [127, 0, 0, 1], port: server.port, routed: false)])
        XCTAssertEqual(try local.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])

        var redirect = FreedomSettings()
        redirect.redirectHost = "127.0.0.1"
        redirect.redirectPort = Int(server.port)
        let proxy = FreedomOutbound(tag: "proxy", settings: redirect, counters: WorkerCounters(), logger: Logger(label: "test"))
        let routed = try resolver([.tcp(address: [192, 0, 2, 53], port: 53, routed: true)])
        var asked: [Destination] = []
        routed.route = { destination in
            asked.append(destination)
            return proxy
        }
        XCTAssertEqual(try routed.lookup("echo.test", family: .ipv4).wait(), [[127, 0, 0, 1]])
        XCTAssertEqual(try routed.loop.submit { asked }.wait().map(\.description), ["tcp:192.0.2.53:53"])
    }

    func testQueriesRoutedToABlackholeTimeOut() throws {
        let server = try dnsmasq([])
        let dns = try resolver([loopback(server.port)])
        dns.route = { _ in BlackholeOutbound(tag: "block", settings: BlackholeSettings()) }
        let started = Date()
        XCTAssertEqual(try dns.lookup("echo.test", family: .ipv4).wait(), [])
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 3.5, "both attempts waited for")
    }

    // MARK: scripted server

    func testForgedAndMismatchedRepliesAreIgnored() throws {
        let forger = try ScriptedDNSServer(group: group) { _, _ in [] }
        let server = try ScriptedDNSServer(group: group) { query, _ in
            var wrongID = ScriptedDNSServer.reply(to: query, address: [6, 6, 6, 1])
            wrongID[0] ^= 0xFF
            var wrongName = ScriptedDNSServer.reply(to: query, address: [6, 6, 6, 2])
            wrongName[13] ^= 0x01  // first letter of the question name
            let notAResponse = query.bytes
            // The right reply, but from another port: only the server's own address counts.
            forger.send(ScriptedDNSServer.reply(to: query, address: [6, 6, 6, 3]), to: query.source)
            return [wrongID, wrongName, notAResponse, ScriptedDNSServer.reply(to: query, address: [192, 0, 2, 1])]
        }
        let dns = try resolver([loopback(server.port)])
        XCTAssertEqual(try dns.lookup("www.example.com", family: .ipv4).wait(), [[192, 0, 2, 1]])
    }

    func testSilenceIsRetriedWithANewID() throws {
        let server = try ScriptedDNSServer(group: group) { query, index in
            index == 0 ? [] : [ScriptedDNSServer.reply(to: query, address: [192, 0, 2, 9])]
        }
        let dns = try resolver([loopback(server.port)])
        XCTAssertEqual(try dns.lookup("retry.example", family: .ipv4).wait(), [[192, 0, 2, 9]])
        let queries = server.queries
        XCTAssertEqual(queries.count, 2)
        XCTAssertNotEqual(Array(queries[0].bytes[0..<2]), Array(queries[1].bytes[0..<2]), "a new id")
        XCTAssertEqual(queries[0].sourcePort, queries[1].sourcePort, "the same socket")
    }

    /// "No such name" with an SOA is cached for the SOA's negative TTL (RFC 2308), RCODE and all.
    func testNameErrorIsCachedWithItsRCODE() throws {
        let server = try ScriptedDNSServer(group: group) { query, _ in
            var reply = Array(query.bytes[0..<2]) + [0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0]
            reply += query.bytes[12...]
            let soa: [UInt8] = [0, 0] + Array(repeating: 0, count: 16) + [0, 0, 0, 30]  // root mname/rname, minimum 30
            reply += [0, 0, 6, 0, 1, 0, 0, 0x0E, 0x10, 0, UInt8(soa.count)] + soa
            return [reply]
        }
        let dns = try resolver([loopback(server.port)])
        XCTAssertEqual(try dns.resolve("gone.example", family: .ipv4).wait(), .init(addresses: [], rcode: .nameError))
        XCTAssertEqual(try dns.resolve("gone.example", family: .ipv4).wait(), .init(addresses: [], rcode: .nameError))
        XCTAssertEqual(server.queries.count, 1, "the second answer came from the cache")
    }

    func testEachQuestionHasItsOwnSocketAndCacheAvoidsRepeats() throws {
        let server = try ScriptedDNSServer(group: group) { query, _ in [ScriptedDNSServer.reply(to: query, address: [192, 0, 2, 1])] }
        let dns = try resolver([loopback(server.port)])
        _ = try dns.lookup("one.example", family: .ipv4).wait()
        _ = try dns.lookup("two.example", family: .ipv4).wait()
        _ = try dns.lookup("one.example", family: .ipv4).wait()
        XCTAssertEqual(server.queries.count, 2, "the third lookup came from the cache")
        XCTAssertNotEqual(server.queries[0].sourcePort, server.queries[1].sourcePort)

        let uncached = try resolver([loopback(server.port)]) { $0.disableCache = true }
        _ = try uncached.lookup("one.example", family: .ipv4).wait()
        _ = try uncached.lookup("one.example", family: .ipv4).wait()
        XCTAssertEqual(server.queries.count, 4, "disableCache asks every time")
    }

    func testIdenticalConcurrentQuestionsAreCoalesced() throws {
        let server = try ScriptedDNSServer(group: group, delay: .milliseconds(300)) { query, _ in
            [ScriptedDNSServer.reply(to: query, address: [192, 0, 2, 1])]
        }
        let dns = try resolver([loopback(server.port)])
        let lookups = (0..<5).map { _ in dns.lookup("same.example", family: .ipv4) }
        for lookup in lookups { XCTAssertEqual(try lookup.wait(), [[192, 0, 2, 1]]) }
        XCTAssertEqual(server.queries.count, 1)
    }

    func testInFlightQuestionsAreBounded() throws {
        let server = try ScriptedDNSServer(group: group) { _, _ in [] }
        let counters = WorkerCounters()
        let dns = try DNSResolver(DNSConfig(servers: [loopback(server.port)]), loop: group.next(), counters: counters, maximumInFlight: 4)
        let waiting = (0..<4).map { dns.lookup("q\($0).example", family: .ipv4) }
        let started = Date()
        XCTAssertEqual(try dns.lookup("q4.example", family: .ipv4).wait(), [], "refused at once")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(try dns.loop.submit { dns.inFlightCount }.wait(), 4)
        XCTAssertEqual(try dns.loop.submit { counters.dropped["dns_busy"] }.wait(), 1, "counted")
        for lookup in waiting { XCTAssertEqual(try lookup.wait(), []) }
        XCTAssertEqual(try dns.loop.submit { dns.inFlightCount }.wait(), 0)
    }
}

/// Passes everything to a real outbound and records the destinations of the links it opens.
final class CountingOutbound: Outbound {
    let inner: Outbound
    var opened: [Destination] = []
    init(_ inner: Outbound) { self.inner = inner }
    var tag: String? { inner.tag }
    var carriesPacketDestinations: Bool { inner.carriesPacketDestinations }
    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        opened.append(destination)
        return inner.open(destination, sink: sink, loop: loop, level: level)
    }
}

/// A UDP DNS "server" on 127.0.0.1 that records every query and answers as the test scripts it:
/// `answer(query, index)` returns the datagrams to send back, in order (after `delay`).
final class ScriptedDNSServer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    struct Query {
        var bytes: [UInt8]
        var source: NIOCore.SocketAddress
        var sourcePort: Int { source.port ?? 0 }
    }

    private let lock = NSLock()
    private var recorded: [Query] = []
    private let answer: (Query, Int) -> [[UInt8]]
    private let delay: TimeAmount
    private var channel: Channel!

    init(group: EventLoopGroup, delay: TimeAmount = .zero, answer: @escaping (Query, Int) -> [[UInt8]]) throws {
        self.answer = answer
        self.delay = delay
        channel = try DatagramBootstrap(group: group)
            .channelInitializer { channel in channel.pipeline.addHandler(self) }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    deinit { channel?.close(promise: nil) }

    var port: UInt16 { UInt16(channel.localAddress!.port!) }

    var queries: [Query] {
        lock.lock(); defer { lock.unlock() }
        return recorded
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let query = Query(bytes: Array(envelope.data.readableBytesView), source: envelope.remoteAddress)
        lock.lock()
        let index = recorded.count
        recorded.append(query)
        lock.unlock()
        let replies = answer(query, index)
        let channel = context.channel
        channel.eventLoop.scheduleTask(in: delay) {
            for reply in replies { self.send(reply, to: query.source) }
        }
    }

    /// Sends one datagram from this server's socket.
    func send(_ bytes: [UInt8], to address: NIOCore.SocketAddress) {
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    /// A response to `query` (one question, as sent) with one A record.
    static func reply(to query: Query, address: [UInt8], ttl: UInt32 = 60) -> [UInt8] {
        var out = Array(query.bytes[0..<2]) + [0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        out += query.bytes[12...]
        out += [0xC0, 12, 0, 1, 0, 1, UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF),
                0, UInt8(address.count)] + address
        return out
    }
}
