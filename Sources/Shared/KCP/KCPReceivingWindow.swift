import NIOCore

/// Segments received ahead of the reader, numbered from `next` (v2fly kcp/receiving.go). Only numbers
/// in [next, next + size) are kept; V2Ray drops (and does not acknowledge) anything else. The slots
/// are filled lazily, so an idle session holds nothing.
struct KCPReceivingWindow {
    private var slots = CircularBuffer<ByteBuffer?>(initialCapacity: 8)
    private(set) var next: UInt32 = 0
    let size: UInt32

    init(size: Int) { self.size = UInt32(size) }

    /// false: outside the window (not to be acknowledged).
    func accepts(_ number: UInt32) -> Bool { number &- next < size }

    mutating func set(_ number: UInt32, _ payload: ByteBuffer) {
        let offset = Int(number &- next)
        while slots.count <= offset { slots.append(nil) }
        let i = slots.index(slots.startIndex, offsetBy: offset)
        if slots[i] == nil { slots[i] = payload }
    }

    var hasNext: Bool { slots.first.map { $0 != nil } ?? false }

    /// The next in-order payload, if it arrived.
    var front: ByteBuffer? { slots.first ?? nil }

    /// The front payload was taken.
    mutating func advance() {
        slots.removeFirst()
        next &+= 1
    }
}

/// Numbers to acknowledge, with the sender's timestamp each came with and when each is due to be
/// acknowledged again (v2fly kcp/receiving.go AckList). An entry stays until the peer's sendingNext
/// passes it; a number that arrives twice is one entry (V2Ray keeps duplicates; here the list is
/// bounded by `limit`, oldest dropped first, so a peer that never advances cannot grow it).
struct KCPAckList {
    private(set) var numbers: [UInt32] = []
    private var timestamps: [UInt32] = []
    private var nextFlush: [UInt32] = []
    private var dirty = false
    /// Not-yet-due numbers seen during a flush; kept to reuse its storage.
    private var candidates: [UInt32] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var isEmpty: Bool { numbers.isEmpty }

    mutating func add(_ number: UInt32, timestamp: UInt32) {
        dirty = true
        // In-order arrival (the common case) appends without a search.
        if let last = numbers.last, number &- last < 0x7FFF_FFFF, number != last {
            append(number, timestamp)
            return
        }
        if let i = numbers.firstIndex(of: number) {
            timestamps[i] = timestamp
            nextFlush[i] = 0
            return
        }
        append(number, timestamp)
    }

    private mutating func append(_ number: UInt32, _ timestamp: UInt32) {
        if numbers.count >= limit {
            numbers.removeFirst(); timestamps.removeFirst(); nextFlush.removeFirst()
        }
        numbers.append(number); timestamps.append(timestamp); nextFlush.append(0)
    }

    /// The peer has everything below `una`.
    mutating func clear(below una: UInt32) {
        var kept = 0
        for i in numbers.indices where numbers[i] >= una {
            numbers[kept] = numbers[i]; timestamps[kept] = timestamps[i]; nextFlush[kept] = nextFlush[i]
            kept += 1
        }
        if kept < numbers.count {
            numbers.removeLast(numbers.count - kept)
            timestamps.removeLast(timestamps.count - kept)
            nextFlush.removeLast(nextFlush.count - kept)
            dirty = true
        }
    }

    /// V2Ray's AckList.Flush: due numbers go out (128 per segment) and are due again after half an
    /// RTO (at least 20 ms); the last segment is topped up with not-yet-due numbers. `emit` gets each
    /// segment's numbers and its timestamp (the newest of the due ones).
    mutating func flush(now: UInt32, rto: UInt32, batch: inout [UInt32], emit: ([UInt32], UInt32) -> Void) {
        batch.removeAll(keepingCapacity: true)
        candidates.removeAll(keepingCapacity: true)
        var timestamp: UInt32 = 0
        let again = max(rto / 2, 20)
        for i in numbers.indices {
            if nextFlush[i] &- now < 0x7FFF_FFFF, nextFlush[i] != now {
                if candidates.count < KCPSegment.ackNumberLimit { candidates.append(numbers[i]) }
                continue
            }
            batch.append(numbers[i])
            if timestamps[i] &- timestamp < 0x7FFF_FFFF { timestamp = timestamps[i] }
            nextFlush[i] = now &+ again
            if batch.count == KCPSegment.ackNumberLimit {
                emit(batch, timestamp)
                batch.removeAll(keepingCapacity: true)
                timestamp = 0
                dirty = false
            }
        }
        if dirty || !batch.isEmpty {
            for n in candidates where batch.count < KCPSegment.ackNumberLimit { batch.append(n) }
            emit(batch, timestamp)
            dirty = false
        }
    }
}
