import NIOCore

/// Segments written but not yet acknowledged, numbered consecutively from `first` (v2fly
/// kcp/sending.go SendingWindow). A slot becomes nil when its segment is acknowledged out of order;
/// nil slots at the front are dropped at once, so the front slot is always a live segment. At most
/// `capacity` slots: the writer waits when it is full (backpressure toward the local stream).
struct KCPSendingWindow {
    struct Entry {
        var number: UInt32
        var payload: ByteBuffer
        /// Elapsed ms at which the segment is due (again); 0 for never sent.
        var timeout: UInt32 = 0
        var timestamp: UInt32 = 0
        var transmit: UInt32 = 0
    }

    private var slots = CircularBuffer<Entry?>(initialCapacity: 16)
    /// Number of the front slot.
    private(set) var first: UInt32 = 0
    let capacity: Int
    /// Segments sent at least once and not acknowledged individually (V2Ray's loss-rate base).
    private var totalInFlight: UInt32 = 0

    init(capacity: Int) { self.capacity = capacity }

    var isEmpty: Bool { slots.isEmpty }
    var isFull: Bool { slots.count >= capacity }
    var slotCount: Int { slots.count }

    mutating func push(number: UInt32, payload: ByteBuffer) {
        if slots.isEmpty { first = number }
        slots.append(Entry(number: number, payload: payload))
    }

    /// Drops everything numbered below `una` (the peer has it all).
    mutating func clear(below una: UInt32) {
        while !slots.isEmpty, first < una {
            slots.removeFirst()
            first &+= 1
        }
        dropAcknowledgedFront()
    }

    mutating func removeAll() {
        slots.removeAll(keepingCapacity: false)
        totalInFlight = 0
    }

    /// One acknowledged number; true if it was outstanding.
    mutating func remove(_ number: UInt32) -> Bool {
        let offset = number &- first
        guard offset < UInt32(slots.count) else { return false }
        let i = slots.index(slots.startIndex, offsetBy: Int(offset))
        guard slots[i] != nil else { return false }
        slots[i] = nil
        if totalInFlight > 0 { totalInFlight -= 1 }
        dropAcknowledgedFront()
        return true
    }

    private mutating func dropAcknowledgedFront() {
        while let head = slots.first, head == nil {
            slots.removeFirst()
            first &+= 1
        }
    }

    /// A later number was acknowledged: segments before it that were sent are probably lost, so
    /// their timeouts come closer by a third of the RTO (V2Ray's fast resend).
    mutating func fastAck(_ number: UInt32, rto: UInt32) {
        var i = slots.startIndex
        while i != slots.endIndex {
            if var e = slots[i] {
                if number == e.number || number &- e.number > 0x7FFF_FFFF { break }
                if e.transmit > 0, e.timeout > rto / 3 {
                    e.timeout -= rto / 3
                    slots[i] = e
                }
            }
            i = slots.index(after: i)
        }
    }

    /// Sends every due segment among the first `window` slots, up to `limit` of them, through `send`; returns
    /// the loss rate in percent (retransmissions against segments in flight) when anything was sent.
    /// Like V2Ray it checks the limit after a send, so the front segment goes out when due even with
    /// a closed window: that is the probe that learns when the peer's window opens again.
    ///
    /// `window` is where V2Ray differs: its flush counts segments, not numbers, so it sends the whole
    /// buffer (writeBufferSize, twice a default receive window) in one burst, and the receiver drops
    /// every number past its window unacknowledged, to be resent at the next RTO on top of the next
    /// burst. Only numbers the peer said it has room for go out here; on a link with a bottleneck
    /// (a slow relay, a shallow router queue) that halves the burst and takes the pointless copies
    /// out of every retransmission round. Nothing changes on the wire but timing.
    ///
    /// The front slot is the first unacknowledged number, so the first `window` slots are exactly
    /// the numbers the peer has room for; a closed window (0) still leaves the front slot, the probe.
    mutating func flush(now: UInt32, rto: UInt32, limit: Int, window: UInt32, send: (Entry) -> Void) -> UInt32? {
        var lost: UInt32 = 0
        var sent = 0
        let stop = slots.index(slots.startIndex, offsetBy: Int(min(max(window, 1), UInt32(slots.count))))
        var i = slots.startIndex
        while i != stop, sent == 0 || sent < limit {
            if var e = slots[i], now &- e.timeout < 0x7FFF_FFFF {
                if e.transmit == 0 { totalInFlight &+= 1 } else { lost &+= 1 }
                // A segment sent again and again waits longer each time: ×2 from the third send, up
                // to ×4, but never past 3 s unless the RTO itself is longer. V2Ray retransmits every
                // RTO without backing off; with a peer that cannot keep up (a CPU-starved receiver
                // dropping at its socket) that resends the whole window every RTO and the link
                // collapses. The bound keeps a lost segment that blocks a full window from waiting
                // long past the peers' idle timers. Only the timing differs on the wire.
                let backoff = rto &* (1 << min(e.transmit > 0 ? e.transmit - 1 : 0, 2))
                e.timeout = now &+ max(rto, min(backoff, 3000))
                e.timestamp = now
                e.transmit &+= 1
                slots[i] = e
                send(e)
                sent += 1
            }
            i = slots.index(after: i)
        }
        guard sent > 0, totalInFlight != 0 else { return nil }
        return UInt32(min(UInt64(lost) * 100 / UInt64(totalInFlight), UInt64(UInt32.max)))
    }
}
