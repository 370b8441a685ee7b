/// The 12-byte per-chunk nonce `BE16(counter) ‖ iv[2:12]` (§9.4), kept in a fixed tuple so that
/// advancing it per chunk allocates nothing. The counter wraps silently at 65536 like the reference.
struct ChunkNonce {
    private var bytes: (UInt64, UInt32) = (0, 0)
    private var counter: UInt16 = 0

    init(iv: [UInt8]) {
        withUnsafeMutableBytes(of: &bytes) { b in
            for i in 2..<12 { b[i] = iv[i] }
        }
    }

    /// Calls `body` with the nonce for the current counter, then advances the counter.
    @inline(__always)
    mutating func withNext<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        let c = counter
        counter &+= 1
        return try withUnsafeMutableBytes(of: &bytes) { b in
            b[0] = UInt8(c >> 8)
            b[1] = UInt8(c & 0xFF)
            return try body(UnsafeRawPointer(b.baseAddress!))
        }
    }
}
