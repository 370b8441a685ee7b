// Event-loop lag per worker slot, in the metrics block (one 64-byte cell per slot, one writer: the
// worker of that slot). A worker runs a task every LagProbe.interval and measures how late it ran;
// a late task means the loop was busy (crypto, a burst of accepts, a blocking call that should not
// be there), which shows as latency for every connection of that worker.
//
//   cell: 0 last lag (µs)   8 largest lag since the worker started (µs)   16 probes run

public struct WorkerLag: Equatable, Sendable {
    public var lastMicroseconds: UInt64 = 0
    public var maxMicroseconds: UInt64 = 0
    public var probes: UInt64 = 0
    public init() {}
}

extension WorkerSlots {
    private func lagOffset(_ slot: Int) -> Int {
        precondition(slot >= 0 && slot < count, "worker slot \(slot) out of range")
        return region.layout.lagOffset + slot * SharedLayout.lagStride
    }

    /// Worker: its latest measurement.
    public func publishLag(_ slot: Int, _ lag: WorkerLag) {
        region.store(lagOffset(slot), lag.lastMicroseconds)
        region.store(lagOffset(slot) + 8, lag.maxMicroseconds)
        region.store(lagOffset(slot) + 16, lag.probes)
    }

    public func lag(_ slot: Int) -> WorkerLag {
        var lag = WorkerLag()
        lag.lastMicroseconds = region.load(lagOffset(slot))
        lag.maxMicroseconds = region.load(lagOffset(slot) + 8)
        lag.probes = region.load(lagOffset(slot) + 16)
        return lag
    }

    /// Supervisor, when it claims a slot for a new worker: the previous occupant's values go.
    func clearLag(_ slot: Int) { publishLag(slot, WorkerLag()) }
}
