/// A small, fast, non-cryptographic generator: the per-server drain constants (deterministic from a
/// seed) and chunk padding bytes (which travel in the clear and carry no secret). Also a
/// RandomNumberGenerator, for tests that need reproducible random choices.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Fills `buffer` (at most a few dozen bytes here) eight bytes per draw.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var i = 0
        while i < buffer.count {
            var word = next()
            let n = min(8, buffer.count - i)
            withUnsafeBytes(of: &word) { w in
                for j in 0..<n { buffer[i + j] = w[j] }
            }
            i += n
        }
    }
}
