// One 128-byte slot per live worker: identity written by the supervisor when it spawns the worker,
// counters written by the worker (each word has exactly one writer; readers use atomic loads, so a
// value is never torn, and a sum across words is a moment's snapshot, which is all statistics need).
//
//   0 state   8 pid   16 generation   24 index   32 started (unix s)      supervisor
//   40 accepted   48 open   56 bytes up   64 bytes down   72 rejected   80 updated (unix ms)   worker
//   88 accept errors (fd exhaustion etc.)                                                     worker

public struct WorkerSlotSnapshot: Equatable, Sendable {
    public var pid: Int32 = 0
    public var generation: Int = 0
    public var index: Int = 0
    public var startedAt: Int64 = 0
    public var accepted: UInt64 = 0
    public var open: UInt64 = 0
    public var bytesUp: UInt64 = 0
    public var bytesDown: UInt64 = 0
    public var rejected: UInt64 = 0
    public var updatedAtMilliseconds: UInt64 = 0
    public var acceptErrors: UInt64 = 0
    public init() {}
}

/// The worker-side counters as one value, written into a slot in one call.
public struct WorkerSlotCounters: Equatable, Sendable {
    public var accepted: UInt64 = 0
    public var open: UInt64 = 0
    public var bytesUp: UInt64 = 0
    public var bytesDown: UInt64 = 0
    public var rejected: UInt64 = 0
    public var acceptErrors: UInt64 = 0
    public init() {}
}

public struct WorkerSlots {
    enum Field: Int {
        case state = 0, pid = 8, generation = 16, index = 24, started = 32
        case accepted = 40, open = 48, bytesUp = 56, bytesDown = 64, rejected = 72, updated = 80, acceptErrors = 88
    }

    let region: SharedRegion
    public init(region: SharedRegion) { self.region = region }

    public var count: Int { region.layout.parameters.slotCount }

    private func offset(_ slot: Int, _ field: Field) -> Int {
        precondition(slot >= 0 && slot < count, "worker slot \(slot) out of range")
        return region.layout.slotOffset(slot) + field.rawValue
    }

    // MARK: supervisor

    /// Claims a free slot for a new worker (supervisor only: it is the single allocator). nil if all
    /// slots are in use.
    public func claim(pid: Int32, generation: Int, index: Int, startedAt: Int64) -> Int? {
        for slot in 0..<count where region.load(offset(slot, .state)) == 0 {
            for field in [Field.accepted, .open, .bytesUp, .bytesDown, .rejected, .updated, .acceptErrors] {
                region.store(offset(slot, field), 0)
            }
            clearLag(slot)
            region.store(offset(slot, .pid), UInt64(UInt32(bitPattern: pid)))
            region.store(offset(slot, .generation), UInt64(generation))
            region.store(offset(slot, .index), UInt64(index))
            region.store(offset(slot, .started), UInt64(max(0, startedAt)))
            // The previous occupant's per-user connection counts (UserLimitTable) are not this worker's.
            region.zero(region.layout.connectionCountOffset(slot: slot, user: 0),
                        bytes: region.layout.parameters.userCapacity * 8)
            region.store(offset(slot, .state), 1)
            return slot
        }
        return nil
    }

    public func setPID(_ slot: Int, _ pid: Int32) {
        region.store(offset(slot, .pid), UInt64(UInt32(bitPattern: pid)))
    }

    /// Frees a slot once its worker has been reaped, returning its last values.
    @discardableResult
    public func release(_ slot: Int) -> WorkerSlotSnapshot {
        let last = read(slot)
        region.store(offset(slot, .state), 0)
        return last
    }

    public func isInUse(_ slot: Int) -> Bool { region.load(offset(slot, .state)) != 0 }

    public func read(_ slot: Int) -> WorkerSlotSnapshot {
        var s = WorkerSlotSnapshot()
        s.pid = Int32(truncatingIfNeeded: region.load(offset(slot, .pid)))
        s.generation = Int(region.load(offset(slot, .generation)))
        s.index = Int(region.load(offset(slot, .index)))
        s.startedAt = Int64(region.load(offset(slot, .started)))
        s.accepted = region.load(offset(slot, .accepted))
        s.open = region.load(offset(slot, .open))
        s.bytesUp = region.load(offset(slot, .bytesUp))
        s.bytesDown = region.load(offset(slot, .bytesDown))
        s.rejected = region.load(offset(slot, .rejected))
        s.updatedAtMilliseconds = region.load(offset(slot, .updated))
        s.acceptErrors = region.load(offset(slot, .acceptErrors))
        return s
    }

    // MARK: worker

    /// Publishes a worker's running totals into its slot.
    public func publish(_ slot: Int, _ c: WorkerSlotCounters, nowMilliseconds: UInt64) {
        region.store(offset(slot, .accepted), c.accepted)
        region.store(offset(slot, .open), c.open)
        region.store(offset(slot, .bytesUp), c.bytesUp)
        region.store(offset(slot, .bytesDown), c.bytesDown)
        region.store(offset(slot, .rejected), c.rejected)
        region.store(offset(slot, .acceptErrors), c.acceptErrors)
        region.store(offset(slot, .updated), nowMilliseconds)
    }

    /// Adds an exited worker's last counts to the region's retired totals.
    public func retire(_ last: WorkerSlotSnapshot) {
        let o = SharedLayout.retiredOffsets
        region.add(o.accepted, last.accepted)
        region.add(o.bytesUp, last.bytesUp)
        region.add(o.bytesDown, last.bytesDown)
        region.add(o.rejected, last.rejected)
        region.add(o.acceptErrors, last.acceptErrors)
    }

    /// What every worker that ever exited counted, since the region was created (across upgrades).
    public var retired: WorkerSlotCounters {
        let o = SharedLayout.retiredOffsets
        var c = WorkerSlotCounters()
        c.accepted = region.load(o.accepted)
        c.bytesUp = region.load(o.bytesUp)
        c.bytesDown = region.load(o.bytesDown)
        c.rejected = region.load(o.rejected)
        c.acceptErrors = region.load(o.acceptErrors)
        return c
    }
}
