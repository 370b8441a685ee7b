import Logging
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker
import XCTest

/// Read-on-writability backpressure on the target side (TargetRelayHandler over ReadHold): a held
/// read is passed on only once the sink itself says the client can take more, whoever signals it,
/// and what NIO reads unasked at the target's EOF waits, with the end behind it, for the sink.
final class ReadHoldTests: XCTestCase {
    /// Counts the reads that reach the channel (the head of the pipeline).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Takes one buffer, then says it is held (as a user's downlink rate hold does after each read).
    final class Sink: DownstreamSink {
        var writable = true
        var holdAfterEach = false
        var received: [UInt8] = []
        var flushes = 0
        var finished: Bool?
        func downstream(_ buffer: inout ByteBuffer) {
            XCTAssertNil(finished, "nothing after the end")
            received += buffer.readableBytesView
            if holdAfterEach { writable = false }
        }
        func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
        func flushDownstream() { flushes += 1 }
        func downstreamFinished(error: Bool) { finished = error }
        var downstreamWritable: Bool { writable }
        func upstreamWritabilityChanged() {}
    }

    private func makeRelay(budget: KeptBytesBudget = KeptBytesBudget(limit: 1 << 20)) throws
        -> (EmbeddedChannel, Sink, ReadCounter, TargetRelayHandler) {
        let sink = Sink(), counter = ReadCounter()
        let relay = TargetRelayHandler(sink: sink, hold: ReadHold(budget: budget))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, relay])
        return (channel, sink, counter, relay)
    }

    func testAResumeWhileTheSinkStillHoldsPassesNoRead() throws {
        let (channel, sink, counter, relay) = try makeRelay()
        channel.read()
        XCTAssertEqual(counter.reads, 1, "an open sink passes reads on")

        sink.writable = false  // e.g. a user's downlink rate hold
        channel.read()
        XCTAssertEqual(counter.reads, 1, "held")
        // The client socket drained: its writability signal arrives while the hold still runs.
        relay.resumeReads()
        XCTAssertEqual(counter.reads, 1, "a resume the sink does not agree with passes nothing")

        sink.writable = true
        relay.resumeReads()
        XCTAssertEqual(counter.reads, 2, "the held read goes on once the sink is open")
        relay.resumeReads()
        XCTAssertEqual(counter.reads, 2, "and only once")
        _ = try channel.finish()
    }

    /// NIO's EOF drain: several reads nobody asked for, then the end of input, all while the sink
    /// is held. They reach the sink one resume at a time, in order, and the end right after them.
    func testWhatArrivesUnaskedWaitsForTheSinkWithTheEndBehindIt() throws {
        let (channel, sink, counter, relay) = try makeRelay()
        sink.holdAfterEach = true
        let parts: [[UInt8]] = [Array(repeating: 1, count: 100), Array(repeating: 2, count: 7), [3, 3, 3], [4]]
        for part in parts { try channel.writeInbound(ByteBuffer(bytes: part)) }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(sink.received, parts[0], "the first read goes to the open sink, the rest waits")
        XCTAssertNil(sink.finished, "the end waits behind the kept bytes")
        XCTAssertEqual(relay.hold.keptBytes, 11)

        relay.resumeReads()
        XCTAssertEqual(sink.received, parts[0], "the sink still holds: nothing moves")
        var expected = parts[0]
        for part in parts.dropFirst() {
            let flushes = sink.flushes
            sink.writable = true
            relay.resumeReads()
            expected += part
            XCTAssertEqual(sink.received, expected, "one kept read per opening, in order")
            XCTAssertEqual(sink.flushes, flushes + 1, "and flushed")
            if part != parts.last! { XCTAssertNil(sink.finished) }
        }
        XCTAssertEqual(sink.finished, false, "the end follows the last kept read at once (it carries no bytes)")
        XCTAssertEqual(relay.hold.keptBytes, 0)
        XCTAssertEqual(counter.reads, 0, "no socket read was asked for")
        _ = try channel.finish()
    }

    /// What the worker's connections keep together is bounded: a read that does not fit fails its
    /// connection (an error end, never a cut stream passed on as whole), and every kept byte goes
    /// back to the budget once handed on, discarded or freed.
    func testKeptBytesAreBoundedAcrossConnectionsAndGivenBack() throws {
        let budget = KeptBytesBudget(limit: 100)
        let (channel, sink, _, relay) = try makeRelay(budget: budget)
        sink.writable = false
        try channel.writeInbound(ByteBuffer(repeating: 1, count: 60))
        XCTAssertEqual(budget.inUse, 60)
        do {
            // A second connection on the same budget: its 30 fit, its next 20 do not.
            let (other, otherSink, _, _) = try makeRelay(budget: budget)
            otherSink.writable = false
            try other.writeInbound(ByteBuffer(repeating: 2, count: 30))
            XCTAssertEqual(budget.inUse, 90)
            try? other.writeInbound(ByteBuffer(repeating: 2, count: 20))
            XCTAssertEqual(otherSink.finished, true, "refused: the connection fails")
            XCTAssertFalse(other.isActive, "and is closed")
            XCTAssertEqual(budget.refusals, 1)
            XCTAssertEqual(budget.inUse, 60, "its kept bytes went back")
        }
        sink.writable = true
        relay.resumeReads()
        XCTAssertEqual(sink.received.count, 60)
        XCTAssertEqual(budget.inUse, 0, "handed on: given back")
        _ = try? channel.finish()
    }

    /// `"vmessd": {"limits": {"waitingBytesPerWorker": N}}` is the worker's budget (set at its start).
    func testTheWorkerBudgetIsTheConfiguredLimit() throws {
        let config = try ConfigParser.parse(text: """
            {"vmessd": {"limits": {"waitingBytesPerWorker": 2097152}},
             "inbounds": [{"port": 1080, "protocol": "vmess", "settings": {"clients": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]}}],
             "outbounds": [{"protocol": "freedom"}]}
            """, sourceFile: "config.json")
        defer { WorkerProcess.applyProcessWideLimits(ClientLimits()) }
        WorkerProcess.applyProcessWideLimits(config.daemon.limits)
        XCTAssertEqual(KeptBytesBudget.worker.limit, 2 << 20)
        WorkerProcess.applyProcessWideLimits(ClientLimits())
        XCTAssertEqual(KeptBytesBudget.worker.limit, 256 << 20)
        // A budget whose limit drops below what it holds refuses until enough is given back.
        let budget = KeptBytesBudget(limit: 100)
        XCTAssertTrue(budget.take(80))
        budget.limit = 50
        XCTAssertFalse(budget.take(1))
        budget.give(40)
        XCTAssertTrue(budget.take(10))
    }

    func testAFreedHoldGivesItsKeptBytesBack() {
        let budget = KeptBytesBudget(limit: 100)
        do {
            let hold = ReadHold(budget: budget)
            XCTAssertEqual(hold.admit(ByteBuffer(repeating: 1, count: 70), open: false), .kept)
            XCTAssertEqual(hold.admit(ByteBuffer(repeating: 1, count: 10), open: true), .kept, "behind older bytes")
            XCTAssertEqual(budget.inUse, 80)
        }
        XCTAssertEqual(budget.inUse, 0)
    }

    /// A target that fails loses what was kept: its end is an error, at once.
    func testAnErrorDiscardsWhatWasKept() throws {
        let (channel, sink, _, relay) = try makeRelay()
        sink.writable = false
        try channel.writeInbound(ByteBuffer(bytes: [1, 2, 3]))
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "test"))
        XCTAssertEqual(sink.finished, true)
        XCTAssertEqual(relay.hold.keptBytes, 0)
        sink.writable = true
        relay.resumeReads()
        XCTAssertEqual(sink.received, [], "nothing after the error")
        _ = try? channel.finish()
    }
}

/// The same on a VMess outbound (VMessClientHandler): response bytes NIO reads unasked at the
/// server's EOF, while the local client (or a user's rate) holds, reach the sink only as it opens,
/// decoded in order, and the end after them.
final class VMessOutboundReadHoldTests: XCTestCase {
    func testKeptResponseBytesAreDecodedInOrderAsTheSinkOpens() throws {
        let destination = Destination(network: .tcp, address: .ipv4([1, 2, 3, 4]), port: 80)
        let user = VMessClientUser(VMessUser(id: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", security: "aes-128-gcm"))
        let request = try user.makeRequest(command: .tcp, destination: destination, now: 1_700_000_000)
        let plain = ResponseHeader.plain(responseAuth: request.header.responseAuth, command: nil)
        let header = try ResponseHeader.sealAEAD(plain, keys: request.responseKeys)
        let encoder = try BodyEncoder(try BodyParameters.response(request.header, keys: request.responseKeys))
        let payloads: [[UInt8]] = [Array(repeating: 7, count: 300), Array(repeating: 8, count: 40), [9]]
        var chunks: [ByteBuffer] = []
        for (i, p) in payloads.enumerated() {
            var payload = ByteBuffer(bytes: p)
            var chunk = try encoder.encode(&payload, allocator: ByteBufferAllocator())
            if i == 0 { chunk = ByteBuffer(bytes: header + Array(chunk.readableBytesView)) }
            chunks.append(chunk)
        }
        var end = ByteBuffer()
        try encoder.encodeEnd(into: &end)

        let sink = ReadHoldTests.Sink()
        sink.holdAfterEach = true
        let handler = VMessClientHandler(sink: sink, destination: destination, logger: Logger(label: "test"))
        try handler.expect(request)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        for chunk in chunks + [end] { try channel.writeInbound(chunk) }
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(sink.received, payloads[0], "the first read reaches the open sink")
        XCTAssertNil(sink.finished)

        var expected = payloads[0]
        for p in payloads.dropFirst() {
            sink.writable = true
            handler.resumeReads()
            expected += p
            XCTAssertEqual(sink.received, expected, "one kept read per opening, decoded in order")
        }
        XCTAssertNil(sink.finished, "the end chunk and the EOF still wait")
        sink.writable = true
        handler.resumeReads()
        XCTAssertEqual(sink.finished, false, "a normal end, after everything before it")
        XCTAssertEqual(handler.hold.keptBytes, 0)
        _ = try? channel.finish()
    }
}
