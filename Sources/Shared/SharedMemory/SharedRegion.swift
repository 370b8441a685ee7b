// The mapping of the shared-memory memfd. The supervisor creates it once for its whole life (so the
// replay filter and the traffic counters survive reloads and worker restarts) and passes the memfd
// to each worker over its control socket; the worker maps it and closes the descriptor.
//
// Only 64-bit words are shared, each naturally aligned, read and written through the C atomics
// (CShims), except inside a locked replay stripe where the lock orders plain accesses.

import CShims
import Glibc

public final class SharedRegion {
    public let base: UnsafeMutableRawPointer
    public let layout: SharedLayout
    /// The memfd, kept by the creator (the supervisor) to hand to workers; nil in a worker.
    public let descriptor: Int32?

    private init(base: UnsafeMutableRawPointer, layout: SharedLayout, descriptor: Int32?) {
        self.base = base
        self.layout = layout
        self.descriptor = descriptor
    }

    deinit {
        munmap(base, layout.totalSize)
        if let descriptor { try? Posix.close(descriptor) }
    }

    /// Creates, sizes, seals (against resizing: a worker must not be able to shrink the region under
    /// the others and make them fault) and initializes a new region.
    public static func create(_ parameters: SharedLayout.Parameters = .init(), name: String = "vmessd-shared") throws -> SharedRegion {
        let layout = try SharedLayout(parameters)
        // A replay stripe keeps its level word in its lock cell, after the mutex.
        guard vmessd_shared_lock_size() <= SharedLayout.stripeLevelInLockCell else {
            throw SharedMemoryError.badParameters("pthread_mutex_t is \(vmessd_shared_lock_size()) bytes")
        }
        let fd = try Posix.retryingEINTR("memfd_create(\(name))") { vmessd_memfd_create(name) }
        do {
            try Posix.retryingEINTR("ftruncate(\(name))") { ftruncate(fd, off_t(layout.totalSize)) }
            do {
                try Posix.retryingEINTR("fcntl(F_ADD_SEALS)") { fcntl(fd, GNU.F_ADD_SEALS, GNU.F_SEAL_SHRINK | GNU.F_SEAL_GROW | GNU.F_SEAL_SEAL) }
            } catch let error as PosixError where error.errno == EPERM || error.errno == EINVAL {
                // Sealing is defence in depth; a kernel without it still works.
            }
            let base = try map(fd: fd, size: layout.totalSize)
            let region = SharedRegion(base: base, layout: layout, descriptor: fd)
            try region.initialize()
            return region
        } catch {
            try? Posix.close(fd)
            throw error
        }
    }

    /// Maps a region created by `create` (in another process). The descriptor stays the caller's.
    public static func attach(fd: Int32) throws -> SharedRegion { try attach(fd: fd, owning: false) }

    /// Maps a region another supervisor created and handed over (a binary upgrade): this process
    /// then owns the descriptor, hands it to its workers, and closes it at the end, like `create`'s.
    public static func adopt(fd: Int32) throws -> SharedRegion { try attach(fd: fd, owning: true) }

    private static func attach(fd: Int32, owning: Bool) throws -> SharedRegion {
        var info = stat()
        try Posix.retryingEINTR("fstat(shared memory)") { fstat(fd, &info) }
        let size = Int(info.st_size)
        guard size >= SharedLayout.headerSize else { throw SharedMemoryError.notARegion("only \(size) bytes") }
        let base = try map(fd: fd, size: size)
        func word(_ offset: Int) -> UInt64 { vmessd_atomic_load_u64(base.advanced(by: offset).assumingMemoryBound(to: UInt64.self)) }
        do {
            guard word(SharedLayout.magicOffset) == SharedLayout.magic else { throw SharedMemoryError.notARegion("bad magic") }
            guard word(SharedLayout.versionOffset) == SharedLayout.version else {
                throw SharedMemoryError.notARegion("layout version \(word(SharedLayout.versionOffset))")
            }
            let o = SharedLayout.parameterOffsets
            let parameters = SharedLayout.Parameters(
                slotCount: Int(word(o.slots)), userCapacity: Int(word(o.users)), reasonCapacity: Int(word(o.reasons)),
                replayStripes: Int(word(o.stripes)), replayBucketsPerStripe: Int(word(o.buckets)),
                replayBucketSlots: Int(word(o.bucketSlots)), statCapacity: Int(word(o.stats)),
                metricCapacity: Int(word(SharedLayout.metricCapacityOffset)))
            let layout = try SharedLayout(parameters)
            guard layout.totalSize == size, Int(word(SharedLayout.totalSizeOffset)) == size else {
                throw SharedMemoryError.sizeMismatch(expected: layout.totalSize, actual: size)
            }
            return SharedRegion(base: base, layout: layout, descriptor: owning ? fd : nil)
        } catch {
            munmap(base, size)
            throw error
        }
    }

    private static func map(fd: Int32, size: Int) throws -> UnsafeMutableRawPointer {
        guard let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), pointer != MAP_FAILED else {
            throw PosixError(errno: Glibc.errno, call: "mmap(shared memory, \(size) bytes)")
        }
        return pointer
    }

    private func initialize() throws {
        // ftruncate gave zeroed pages: only the header and the locks need writing.
        let p = layout.parameters
        let o = SharedLayout.parameterOffsets
        store(SharedLayout.versionOffset, SharedLayout.version)
        store(SharedLayout.totalSizeOffset, UInt64(layout.totalSize))
        store(o.slots, UInt64(p.slotCount))
        store(o.users, UInt64(p.userCapacity))
        store(o.reasons, UInt64(p.reasonCapacity))
        store(o.stripes, UInt64(p.replayStripes))
        store(o.buckets, UInt64(p.replayBucketsPerStripe))
        store(o.bucketSlots, UInt64(p.replayBucketSlots))
        store(o.stats, UInt64(p.statCapacity))
        store(SharedLayout.metricCapacityOffset, UInt64(p.metricCapacity))
        var seed: UInt64 = 0
        withUnsafeMutableBytes(of: &seed) { SecureRandom.fill($0) }
        store(SharedLayout.replaySeedOffset, seed)
        try initializeLock(at: SharedLayout.userLockOffset)
        try initializeLock(at: SharedLayout.reasonLockOffset)
        try initializeLock(at: SharedLayout.statLockOffset)
        try initializeLock(at: SharedLayout.limitLockOffset)
        try initializeLock(at: SharedLayout.metricLockOffset)
        for stripe in 0..<p.replayStripes { try initializeLock(at: layout.stripeOffset(stripe)) }
        // The magic last: a region is valid only once everything above is in place.
        store(SharedLayout.magicOffset, SharedLayout.magic)
    }

    private func initializeLock(at offset: Int) throws {
        let code = vmessd_shared_lock_init(base.advanced(by: offset))
        if code != 0 { throw SharedMemoryError.lockInit(code) }
    }

    // MARK: words

    @inline(__always)
    func word(_ offset: Int) -> UnsafeMutablePointer<UInt64> {
        base.advanced(by: offset).assumingMemoryBound(to: UInt64.self)
    }

    @inline(__always)
    public func load(_ offset: Int) -> UInt64 { vmessd_atomic_load_u64(word(offset)) }

    @inline(__always)
    public func store(_ offset: Int, _ value: UInt64) { vmessd_atomic_store_u64(word(offset), value) }

    @inline(__always)
    @discardableResult
    public func add(_ offset: Int, _ value: UInt64) -> UInt64 { vmessd_atomic_add_u64(word(offset), value) }

    /// Atomic compare-and-swap; true when `expected` was there and `desired` now is.
    @inline(__always)
    public func compareExchange(_ offset: Int, expected: UInt64, desired: UInt64) -> Bool {
        vmessd_atomic_cas_u64(word(offset), expected, desired) != 0
    }

    /// Plain zeroing of a range nobody reads yet (a worker slot's row before the slot is marked in use).
    func zero(_ offset: Int, bytes: Int) {
        memset(base.advanced(by: offset), 0, bytes)
    }

    @inline(__always)
    public func exchange(_ offset: Int, _ value: UInt64) -> UInt64 { vmessd_atomic_exchange_u64(word(offset), value) }

    /// Runs `body` holding the process-shared lock at `offset`. A lock whose owner died holding it is
    /// taken over (robust mutex); `body` must leave its data consistent whatever it finds.
    @inline(__always)
    func withLock<R>(at offset: Int, _ body: () -> R) -> R {
        let lock = base.advanced(by: offset)
        let code = vmessd_shared_lock(lock)
        precondition(code == 0 || code == 1, "shared lock failed with errno \(code)")
        defer { vmessd_shared_unlock(lock) }
        return body()
    }

    var replaySeed: UInt64 { load(SharedLayout.replaySeedOffset) }

    /// Counter entries that found no free slot, and AuthIDs that evicted a live entry from a full bucket.
    public var counterOverflows: UInt64 { load(SharedLayout.counterOverflowOffset) }
    public var replayBucketOverflows: UInt64 { load(SharedLayout.replayFullOffset) }
}
