// The dns outbound's link on its own: answers in the client's framing (datagrams, or length-prefixed
// messages on a stream that ends once everything is answered) and the bound on lookups pending per
// client request. End to end with the real v2ray client: EndToEndTests/DNSTests.

import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared
import XCTest

@testable import Worker

final class DNSOutboundTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUpWithError() throws { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDownWithError() throws { try group.syncShutdownGracefully() }

    /// `hosts.test` → 192.0.2.1 from hosts; every other name goes to `server` (if any).
    private func outbound(server: UInt16? = nil, counters: WorkerCounters = WorkerCounters()) throws -> DNSOutbound {
        var config = DNSConfig()
        var names = DomainSet()
        names.full = ["hosts.test"]
        config.hosts = [DNSHostEntry(domains: names, target: .addresses([[192, 0, 2, 1]]))]
        if let server { config.servers = [DNSServerConfig(address: .udp(address: [127, 0, 0, 1], port: server), jsonPath: "s")] }
        let dns = try DNSResolver(config, loop: group.next(), counters: counters)
        return DNSOutbound(tag: "dns-out", settings: DNSOutboundSettings(), dns: dns, counters: counters, logger: Logger(label: "test"))
    }

    private let target = Destination(network: .udp, address: .ipv4([192, 0, 2, 53]), port: 53)

    func testUDPQueriesAreAnsweredAsDatagramsFromTheirDestination() throws {
        let dns = try outbound()
        let sink = RecordingSink()
        let loop = dns.dns.loop
        try loop.submit {
            let link = dns.open(self.target, sink: sink, loop: loop, level: LevelPolicy())
            link.writeDatagram(ByteBuffer(bytes: DNSQuestion("hosts.test", type: .a)!.query(id: 7)), to: self.target)
        }.wait()
        try waitUntil { sink.datagrams.count == 1 }
        let (reply, source) = try loop.submit { sink.datagrams[0] }.wait()
        XCTAssertEqual(source, target)
        guard case .response(let response) = try DNSResponseParser.parse(reply, question: DNSQuestion("hosts.test", type: .a)!) else {
            return XCTFail("not a response")
        }
        XCTAssertEqual(response.id, 7)
        XCTAssertEqual(response.addresses, [[192, 0, 2, 1]])
    }

    func testStreamAnswersAreFramedAndTheStreamEndsWhenAllAreAnswered() throws {
        let dns = try outbound()
        let sink = RecordingSink()
        let loop = dns.dns.loop
        var stream = target
        stream.network = .tcp
        try loop.submit {
            let link = dns.open(stream, sink: sink, loop: loop, level: LevelPolicy())
            var bytes: [UInt8] = []
            for (id, type) in [(1, DNSRecordType.a), (2, .aaaa)] {
                let query = DNSQuestion("hosts.test", type: type)!.query(id: UInt16(id))
                bytes += [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
            }
            // Split mid-message: the framer must wait for the rest.
            link.write(ByteBuffer(bytes: bytes[..<20]))
            link.write(ByteBuffer(bytes: bytes[20...]))
            link.finishUpstream()
        }.wait()
        try waitUntil { sink.finished != nil }
        var received = try loop.submit { sink.stream }.wait()
        var ids: [UInt16] = []
        while let length = received.readInteger(as: UInt16.self), let message = received.readSlice(length: Int(length)) {
            ids.append(message.getInteger(at: message.readerIndex, as: UInt16.self) ?? 0)
        }
        XCTAssertEqual(ids.sorted(), [1, 2])
        XCTAssertEqual(received.readableBytes, 0)
        XCTAssertEqual(try loop.submit { sink.finished }.wait(), false, "finished without error")
    }

    func testPendingLookupsPerRequestAreBounded() throws {
        let silent = try DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { silent.close(promise: nil) }
        let counters = WorkerCounters()
        let dns = try outbound(server: UInt16(silent.localAddress!.port!), counters: counters)
        let sink = RecordingSink()
        let loop = dns.dns.loop
        try loop.submit {
            let link = dns.open(self.target, sink: sink, loop: loop, level: LevelPolicy())
            for i in 0...DNSOutboundLink.maximumPending {
                link.writeDatagram(ByteBuffer(bytes: DNSQuestion("q\(i).example", type: .a)!.query(id: UInt16(i))), to: self.target)
            }
        }.wait()
        XCTAssertEqual(try loop.submit { counters.dropped["dns_pending"] }.wait(), 1)
        XCTAssertEqual(try loop.submit { sink.datagrams.count }.wait(), 0, "the others wait for the silent server")
    }

    private func waitUntil(_ condition: @escaping () -> Bool, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try group.next().submit(condition).wait() { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTFail("condition not met within \(timeout) s")
    }
}

/// A client side that records what the outbound sends it (event-loop confined).
final class RecordingSink: DownstreamSink {
    var datagrams: [(ByteBuffer, Destination)] = []
    var stream = ByteBuffer()
    var finished: Bool?

    func downstream(_ buffer: inout ByteBuffer) { stream.writeBuffer(&buffer) }
    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) { datagrams.append((buffer, source)) }
    func flushDownstream() {}
    func downstreamFinished(error: Bool) { finished = error }
    var downstreamWritable: Bool { true }
    func upstreamWritabilityChanged() {}
}
