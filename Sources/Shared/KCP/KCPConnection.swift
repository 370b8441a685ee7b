import NIOCore

/// One mKCP session's ARQ state machine, with V2Ray's semantics (v2fly transport/internet/kcp
/// connection.go, sending.go, receiving.go) and no I/O: the shell feeds it datagrams' segments
/// (`input`), local bytes (`write`), the clock (`flush`, every TTI and after input), and takes
/// in-order bytes out (`read`) and serialized segments to send (`output`). Time is milliseconds on a
/// monotonic clock given by the caller; internally V2Ray's 32-bit "ms since the session began",
/// compared with wrap-around arithmetic.
///
/// Close handshake (states as V2Ray's):
///
///   active ──close()──▶ readyToClose ──send window empty / 15 s──▶ terminating ──8 s or peer's terminate──▶ terminated
///   active ──peer's close option──▶ peerClosed ──peer's terminate──▶ peerTerminating ──4 s──▶ terminating
///
/// A closing side keeps sending what it had queued (segments carry the close option); the other side
/// drops its own unsent data at once (mKCP has no half-close). 30 s without a packet closes the session.
public final class KCPConnection {
    public enum State: Int, Sendable {
        case active = 0, readyToClose, peerClosed, terminating, peerTerminating, terminated
    }

    public let conv: UInt16
    /// Payload bytes per data segment: the MTU less the datagram overhead and the segment head.
    public let mss: Int
    public private(set) var state: State = .active
    /// Serialized segments to seal and send, one datagram each (as V2Ray sends them). The buffer is
    /// reused: copy what you keep.
    public var output: (ByteBuffer) -> Void = { _ in }

    private let since: UInt64
    private var stateBegin: UInt32 = 0
    private var lastIncoming: UInt32 = 0
    private var lastPing: UInt32 = 0
    private var roundTrip: KCPRoundTrip
    private let settings: KCPSettings

    // Sending side.
    private var sending: KCPSendingWindow
    private var firstUnacknowledged: UInt32 = 0
    private var nextNumber: UInt32 = 0
    private var remoteNextNumber: UInt32 = 32
    private var controlWindow: UInt32
    private var firstUnacknowledgedUpdated = false
    private let sendingInFlight: UInt32

    // Receiving side.
    private var receiving: KCPReceivingWindow
    private var acks: KCPAckList
    private var ackBatch: [UInt32] = []

    private var scratch: ByteBuffer

    /// `overhead`: the packet codec's bytes per datagram. `now`: the monotonic clock in ms.
    public init(conv: UInt16, settings: KCPSettings, overhead: Int, now: UInt64,
                allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.conv = conv
        self.settings = settings
        since = now
        mss = max(settings.mtu - overhead - KCPSegment.dataOverhead, 1)
        roundTrip = KCPRoundTrip(minRTT: UInt32(settings.tti))
        sendingInFlight = UInt32(settings.sendingInFlightSize)
        controlWindow = sendingInFlight
        // V2Ray refuses a push once its list is longer than the buffer size, so it holds one more.
        sending = KCPSendingWindow(capacity: settings.sendingBufferSize + 1)
        receiving = KCPReceivingWindow(size: settings.receivingInFlightSize)
        acks = KCPAckList(limit: 2 * settings.receivingInFlightSize)
        scratch = allocator.buffer(capacity: settings.mtu)
    }

    private func elapsed(_ now: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: now &- since) }

    // MARK: local side

    /// Whether `write` would take anything now.
    public var canWrite: Bool { state == .active && !sending.isFull }

    /// Queues as much of `data` as the send buffer takes, in `mss`-sized segments (slices, no copy);
    /// what is left stays in `data`. Nothing is taken unless the session is active.
    public func write(_ data: inout ByteBuffer) {
        while data.readableBytes > 0, canWrite {
            let payload = data.readSlice(length: min(mss, data.readableBytes))!
            sending.push(number: nextNumber, payload: payload)
            nextNumber &+= 1
        }
    }

    /// Bytes acknowledged nowhere yet (queued or in flight).
    public var hasUnsentData: Bool { !sending.isEmpty }

    /// Hands in-order payloads to `deliver` while it returns true (false: the reader is full; the
    /// segment stays, and the window the peer sees stops moving).
    public func read(_ deliver: (ByteBuffer) -> Bool) {
        guard !readClosed else { return }
        while let payload = receiving.front {
            guard deliver(payload) else { return }
            receiving.advance()
        }
    }

    /// No more bytes will come out of `read` (V2Ray's reader EOF conditions).
    public var readClosed: Bool {
        switch state {
        case .readyToClose, .terminating, .terminated: true
        case .peerTerminating: !receiving.hasNext
        case .active, .peerClosed: false
        }
    }

    public var isTerminated: Bool { state == .terminated }

    /// The smoothed round trip and the retransmission timeout (ms), for tests and diagnostics.
    var roundTripEstimate: (srtt: UInt32, rto: UInt32) { (roundTrip.srtt, roundTrip.rto) }

    /// The local stream ended: V2Ray's Connection.Close.
    public func close(now: UInt64) {
        switch state {
        case .active: setState(.readyToClose, elapsed(now))
        case .peerClosed: setState(.terminating, elapsed(now))
        case .peerTerminating: setState(.terminated, elapsed(now))
        case .readyToClose, .terminating, .terminated: break
        }
    }

    /// Drop the session at once (listener shut down, worker exit).
    public func terminate(now: UInt64) { setState(.terminated, elapsed(now)) }

    private func setState(_ new: State, _ current: UInt32) {
        state = new
        stateBegin = current
        switch new {
        case .peerClosed, .terminating, .peerTerminating, .terminated:
            // CloseWrite: what was not yet acknowledged will never be.
            sending.removeAll()
        case .active, .readyToClose: break
        }
    }

    // MARK: peer side

    /// The segments of one datagram (already opened by the codec). Segments of another conversation
    /// end the datagram, as in V2Ray.
    public func input(_ datagram: inout ByteBuffer, now: UInt64) {
        let current = elapsed(now)
        lastIncoming = current
        while let segment = KCPSegment.read(from: &datagram) {
            guard segment.conv == conv else { break }
            handleOption(segment.option, current)
            switch segment {
            case .data(let s):
                // Old duplicates and numbers beyond the window are dropped without an acknowledgement.
                guard receiving.accepts(s.number) else { continue }
                acks.clear(below: s.sendingNext)
                acks.add(s.number, timestamp: s.timestamp)
                receiving.set(s.number, s.payload)
            case .ack(let s):
                processAck(s, current)
            case .command(let s):
                if s.command == KCPCommand.terminate.rawValue {
                    switch state {
                    case .active, .peerClosed: setState(.peerTerminating, current)
                    case .readyToClose: setState(.terminating, current)
                    case .terminating: setState(.terminated, current)
                    case .peerTerminating, .terminated: break
                    }
                }
                processReceivingNext(s.receivingNext)
                acks.clear(below: s.sendingNext)
                roundTrip.updatePeerRTO(s.peerRTO, now: current)
            }
        }
    }

    private func handleOption(_ option: UInt8, _ current: UInt32) {
        guard option & KCPSegment.optionClose != 0 else { return }
        switch state {
        case .readyToClose: setState(.terminating, current)
        case .active: setState(.peerClosed, current)
        default: break
        }
    }

    private func processReceivingNext(_ next: UInt32) {
        sending.clear(below: next)
        findFirstUnacknowledged()
    }

    private func findFirstUnacknowledged() {
        let previous = firstUnacknowledged
        firstUnacknowledged = sending.isEmpty ? nextNumber : sending.first
        if previous != firstUnacknowledged { firstUnacknowledgedUpdated = true }
    }

    /// The numbers are taken before receivingNext (V2Ray does the reverse): here the receiver
    /// delivers in-order data before its acknowledgement goes out, so its receivingNext already
    /// covers every number listed, and clearing by it first would leave no acknowledgement that
    /// "removed" its highest number — no RTT sample ever, the RTO stuck at its initial 100 ms. (In
    /// V2Ray the reading goroutine usually lags the acknowledgement, which hides this.)
    private func processAck(_ s: KCPAckSegment, _ current: UInt32) {
        if remoteNextNumber < s.receivingWindow { remoteNextNumber = s.receivingWindow }
        defer { processReceivingNext(s.receivingNext) }
        guard s.count > 0 else { return }
        var maxAck: UInt32 = 0
        var maxAckRemoved = false
        for i in 0..<s.count {
            let number = s.number(at: i)
            // Only numbers in [firstUnacknowledged, nextNumber).
            var removed = false
            if number &- firstUnacknowledged <= 0x7FFF_FFFF, number &- nextNumber >= 0x7FFF_FFFF {
                removed = sending.remove(number)
                if removed { findFirstUnacknowledged() }
            }
            if maxAck < number {
                maxAck = number
                maxAckRemoved = removed
            }
        }
        if maxAckRemoved {
            sending.fastAck(maxAck, rto: roundTrip.rto)
            let rtt = current &- s.timestamp
            if rtt < 10_000 { roundTrip.update(rtt: rtt, now: current) }
        }
    }

    // MARK: clock

    /// V2Ray's Connection.flush: timeouts and the close handshake, acknowledgements, due data
    /// segments, and a ping every 3 s (or when the first unacknowledged number moved).
    public func flush(now: UInt64) {
        let current = elapsed(now)
        if state == .terminated { return }
        if state == .active, current &- lastIncoming >= 30_000 { close(now: now) }
        if state == .readyToClose, sending.isEmpty { setState(.terminating, current) }
        if state == .terminating {
            ping(current, .terminate)
            if current &- stateBegin > 8000 { setState(.terminated, current) }
            return
        }
        if state == .peerTerminating, current &- stateBegin > 4000 { setState(.terminating, current) }
        if state == .readyToClose, current &- stateBegin > 15_000 { setState(.terminating, current) }

        flushAcks(current)
        flushData(current)
        if current &- lastPing >= 3000 { ping(current, .ping) }
    }

    private var closeOption: UInt8 { state == .readyToClose ? KCPSegment.optionClose : 0 }

    private func flushAcks(_ current: UInt32) {
        let next = receiving.next
        let window = next &+ receiving.size
        let option = closeOption
        acks.flush(now: current, rto: roundTrip.rto, batch: &ackBatch) { numbers, timestamp in
            scratch.clear()
            scratch.writeMultipleIntegers(conv, KCPCommand.ack.rawValue, option, window, next, timestamp,
                                          UInt8(numbers.count))
            for n in numbers { scratch.writeInteger(n) }
            output(scratch)
        }
    }

    private func flushData(_ current: UInt32) {
        var cwnd = sendingInFlight
        if cwnd > remoteNextNumber &- firstUnacknowledged { cwnd = remoteNextNumber &- firstUnacknowledged }
        if settings.congestion, cwnd > controlWindow { cwnd = controlWindow }
        let limit = Int(cwnd) * 20  // V2Ray's factor
        if !sending.isEmpty {
            let option = closeOption
            let una = firstUnacknowledged
            let loss = sending.flush(now: current, rto: roundTrip.rto, limit: limit, window: cwnd) { e in
                scratch.clear()
                scratch.writeMultipleIntegers(conv, KCPCommand.data.rawValue, option, e.timestamp, e.number, una,
                                              UInt16(e.payload.readableBytes))
                scratch.writeImmutableBuffer(e.payload)
                output(scratch)
            }
            if let loss { onPacketLoss(loss) }
            firstUnacknowledgedUpdated = false
        }
        if firstUnacknowledgedUpdated {
            firstUnacknowledgedUpdated = false
            ping(current, .ping)
        }
    }

    /// V2Ray's congestion rule: shrink by a quarter at ≥15 % loss, grow by a quarter at ≤5 %, within
    /// [16, 2 × in-flight size].
    private func onPacketLoss(_ rate: UInt32) {
        guard settings.congestion, roundTrip.rto != 0 else { return }
        if rate >= 15 {
            controlWindow = 3 * controlWindow / 4
        } else if rate <= 5 {
            controlWindow += controlWindow / 4
        }
        controlWindow = min(max(controlWindow, 16), 2 * sendingInFlight)
    }

    private func ping(_ current: UInt32, _ command: KCPCommand) {
        scratch.clear()
        scratch.writeMultipleIntegers(conv, command.rawValue, closeOption, firstUnacknowledged, receiving.next,
                                      roundTrip.rto)
        output(scratch)
        lastPing = current
    }
}
