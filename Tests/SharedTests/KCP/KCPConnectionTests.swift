// The mKCP ARQ core on a simulated link with an explicit clock: two KCPConnections exchange
// datagrams through the real codec, with loss, and the bytes must come out whole and in order,
// the close handshake must end both sides, and the windows must hold a slow reader's peer back.

import NIOCore
@testable import Shared
import XCTest

final class KCPConnectionTests: XCTestCase {
    /// Two sessions, a link that drops datagrams (deterministic), one clock.
    final class Link {
        let a: KCPConnection
        let b: KCPConnection
        let codec: KCPPacketCodec
        var inFlight: [(toB: Bool, due: UInt64, packet: ByteBuffer)] = []
        var now: UInt64 = 1_000_000
        var rng = SplitMix64(seed: 42)
        var lossPercent: UInt64
        let delay: UInt64 = 10
        var sent = 0, dropped = 0
        /// The highest data segment number a sent toward b (dropped ones included).
        var highestToB: UInt32?
        var received: [UInt8] = []
        /// Bytes b's reader takes per step; nil: everything.
        var readerBudget: Int?

        init(settings: KCPSettings = KCPSettings(), loss: UInt64) throws {
            codec = try KCPPacketCodec(settings: settings)
            lossPercent = loss
            a = KCPConnection(conv: 9, settings: settings, overhead: codec.overhead, now: now)
            b = KCPConnection(conv: 9, settings: settings, overhead: codec.overhead, now: now)
            a.output = { [unowned self] in self.send($0, toB: true) }
            b.output = { [unowned self] in self.send($0, toB: false) }
        }

        func send(_ segment: ByteBuffer, toB: Bool) {
            sent += 1
            XCTAssertLessThanOrEqual(segment.readableBytes + codec.overhead, 1350, "datagram over the MTU")
            if toB {
                var copy = segment
                while let s = KCPSegment.read(from: &copy) {
                    if case .data(let d) = s { highestToB = max(highestToB ?? 0, d.number) }
                }
            }
            if rng.next() % 100 < lossPercent { dropped += 1; return }
            var packet = ByteBufferAllocator().buffer(capacity: 1400)
            codec.seal(segment, into: &packet)
            inFlight.append((toB, now + delay, packet))
        }

        /// Advances the clock by `ms`, delivering what is due and flushing both sides every 10 ms.
        func run(ms: UInt64) {
            let end = now + ms
            while now < end {
                now += 1
                let due = inFlight.filter { $0.due <= now }
                inFlight.removeAll { $0.due <= now }
                for d in due {
                    var p = d.packet
                    XCTAssertTrue(codec.open(&p))
                    (d.toB ? b : a).input(&p, now: now)
                }
                var budget = readerBudget ?? Int.max
                b.read { payload in
                    guard payload.readableBytes <= budget else { return false }
                    budget -= payload.readableBytes
                    received += payload.readableBytesView
                    return true
                }
                if now % 10 == 0 || !due.isEmpty {
                    a.flush(now: now)
                    b.flush(now: now)
                }
            }
        }
    }

    func payload(_ n: Int) -> [UInt8] {
        var rng = SplitMix64(seed: UInt64(n))
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    private func transfer(loss: UInt64, size: Int, settings: KCPSettings = KCPSettings()) throws -> Link {
        let link = try Link(settings: settings, loss: loss)
        let data = payload(size)
        var pending = ByteBufferAllocator().buffer(bytes: data)
        var steps = 0
        while link.received.count < size, steps < 600 {
            link.a.write(&pending)
            link.run(ms: 100)
            steps += 1
        }
        XCTAssertEqual(link.received.count, size, "stalled after \(steps) steps")
        XCTAssertTrue(link.received == data, "bytes differ")
        return link
    }

    func testTransferWithoutLoss() throws {
        let link = try transfer(loss: 0, size: 1 << 20)
        XCTAssertEqual(link.dropped, 0)
        // The 10 ms link delay each way, measured from the acknowledgements.
        let estimate = link.a.roundTripEstimate
        XCTAssertGreaterThanOrEqual(estimate.srtt, 20)
        XCTAssertLessThan(estimate.srtt, 200)
    }

    func testTransferWithLossCompletesIntact() throws {
        let link = try transfer(loss: 10, size: 512 * 1024)
        XCTAssertGreaterThan(link.dropped, 0)
    }

    func testCongestionControlTransfer() throws {
        var settings = KCPSettings()
        settings.congestion = true
        _ = try transfer(loss: 5, size: 256 * 1024, settings: settings)
    }

    /// a closes after its data: b gets everything, then both sides reach terminated (V2Ray's
    /// handshake), and b's reader sees the end.
    func testCloseHandshake() throws {
        let link = try Link(loss: 0)
        let data = payload(100_000)
        var pending = ByteBufferAllocator().buffer(bytes: data)
        link.a.write(&pending)
        XCTAssertEqual(pending.readableBytes, 0)
        link.a.close(now: link.now)
        XCTAssertEqual(link.a.state, .readyToClose)
        XCTAssertFalse(link.a.canWrite)
        link.run(ms: 2000)
        XCTAssertTrue(link.received == data)
        XCTAssertEqual(link.b.state, .peerTerminating)
        XCTAssertTrue(link.b.readClosed)
        link.run(ms: 15_000)
        XCTAssertEqual(link.a.state, .terminated)
        XCTAssertEqual(link.b.state, .terminated)
    }

    /// A peer that goes silent: 30 s later the session closes itself, and terminates within the
    /// handshake's bounds even though nobody answers.
    func testIdleTimeout() throws {
        let link = try Link(loss: 100)
        link.run(ms: 29_000)
        XCTAssertEqual(link.a.state, .active)
        link.run(ms: 2000)
        XCTAssertNotEqual(link.a.state, .active)
        link.run(ms: 30_000)
        XCTAssertEqual(link.a.state, .terminated)
    }

    /// A reader that takes nothing: the sender stops at b's receive window (plus its own send
    /// buffer) instead of piling data up, and resumes when the reader does.
    func testSlowReaderHoldsTheSenderBack() throws {
        var settings = KCPSettings()
        settings.writeBufferSize = 64 * 1024
        let link = try Link(settings: settings, loss: 0)
        link.readerBudget = 0
        let size = 4 << 20
        let data = payload(size)
        var pending = ByteBufferAllocator().buffer(bytes: data)
        for _ in 0..<50 {
            link.a.write(&pending)
            link.run(ms: 100)
        }
        let window = settings.receivingInFlightSize * link.a.mss
        XCTAssertLessThan(size - pending.readableBytes, window + 64 * 1024 + 2 * link.a.mss,
                          "accepted more than the peer's window and the local buffer")
        XCTAssertEqual(link.received.count, 0)
        link.readerBudget = nil
        for _ in 0..<300 where link.received.count < size {
            link.a.write(&pending)
            link.run(ms: 100)
        }
        XCTAssertTrue(link.received == data)
    }

    /// A send buffer twice the peer's receive window (V2Ray's defaults): with the reader stopped,
    /// nothing numbered past the window b announced goes out (V2Ray sends the whole buffer, and b
    /// would drop the second half unacknowledged), and everything still arrives once it reads.
    func testNothingIsSentPastThePeersWindow() throws {
        let settings = KCPSettings()
        XCTAssertGreaterThan(settings.sendingBufferSize, settings.receivingInFlightSize)
        let link = try Link(settings: settings, loss: 0)
        link.readerBudget = 0
        let size = settings.sendingBufferSize * link.a.mss
        let data = payload(size)
        var pending = ByteBufferAllocator().buffer(bytes: data)
        for _ in 0..<20 {
            link.a.write(&pending)
            link.run(ms: 100)
        }
        // b acknowledges what it holds without reading it, so a's first unacknowledged number
        // reaches the window's end; past it only the one-segment probe (the window's size as a
        // number) goes out, again and again.
        XCTAssertEqual(link.highestToB, UInt32(settings.receivingInFlightSize))
        link.readerBudget = nil
        for _ in 0..<300 where link.received.count < size {
            link.a.write(&pending)
            link.run(ms: 100)
        }
        XCTAssertTrue(link.received == data)
    }

    /// A datagram of another conversation changes nothing; garbage of ours never traps.
    func testForeignAndMalformedInput() throws {
        let link = try Link(loss: 0)
        var foreign = ByteBufferAllocator().buffer(bytes: hex("0008 02 00 00000000 00000000 00000000"))
        link.b.input(&foreign, now: link.now)
        XCTAssertEqual(link.b.state, .active)
        var rng = SplitMix64(seed: 7)
        for n in 0..<2000 {
            var junk = ByteBufferAllocator().buffer(bytes: (0..<(n % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            junk.setInteger(UInt16(9), at: 0)
            link.b.input(&junk, now: link.now)
            link.b.flush(now: link.now)
        }
    }
}
