import NIOCore

extension ByteBuffer {
    /// Mutable access to the readable bytes *without* copy-on-write.
    ///
    /// Why: a buffer handed to `channelRead` is never uniquely referenced (the NIOAny and NIO's
    /// receive-buffer pool hold it too), so `withUnsafeMutableReadableBytes` would copy every read
    /// before we decrypt it. Those other holders never read the bytes again (the pool only reuses a
    /// buffer once it is uniquely owned and then overwrites it), so decrypting in place is sound.
    /// Invariant for callers: only use this on a freshly received buffer or on our own cumulation,
    /// never on bytes already handed to someone else.
    @inline(__always)
    func withReadableBytesInPlace<T>(_ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        try withUnsafeReadableBytes { try body(UnsafeMutableRawBufferPointer(mutating: $0)) }
    }
}
