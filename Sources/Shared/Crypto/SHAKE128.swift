/// SHAKE128 with streaming output, for VMess chunk masking (vmess-protocol.md §9.3).
///
/// OpenSSL 3.0 can only squeeze an XOF once (EVP_DigestSqueeze arrived in 3.3), but the mask stream of
/// a connection is unbounded, so the sponge is implemented here: Keccak-f[1600], rate 168 bytes,
/// domain byte 0x1F. Input is absorbed once (the 16-byte IV); after that each `next()` takes two bytes
/// of output, re-permuting the state every 168 bytes. No allocation after init.
public struct SHAKE128 {
    private static let rate = 168
    private var state: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// Read position in the current output block (0 ... rate).
    private var offset = 0

    /// Absorbs `seed` (any length up to the rate; VMess uses 16 bytes) and pads.
    public init(seed: [UInt8]) {
        precondition(seed.count < SHAKE128.rate, "SHAKE128 seed longer than one block is not needed here")
        var block = [UInt8](repeating: 0, count: SHAKE128.rate)
        for (i, b) in seed.enumerated() { block[i] = b }
        block[seed.count] ^= 0x1F
        block[SHAKE128.rate - 1] ^= 0x80
        withUnsafeMutableBytes(of: &state) { s in
            for i in 0..<SHAKE128.rate { s[i] ^= block[i] }  // little-endian lanes: byte i of the state
        }
        SHAKE128.permute(&state)
        offset = 0
    }

    /// The next two output bytes as a big-endian 16-bit value ("mask.next()").
    @inline(__always)
    public mutating func next() -> UInt16 {
        let hi = nextByte()
        let lo = nextByte()
        return UInt16(hi) << 8 | UInt16(lo)
    }

    @inline(__always)
    public mutating func nextByte() -> UInt8 {
        if offset == SHAKE128.rate {
            SHAKE128.permute(&state)
            offset = 0
        }
        let o = offset
        offset += 1
        return withUnsafeBytes(of: &state) { $0[o] }
    }

    /// Fills `out` with the next output bytes.
    public mutating func read(into out: inout [UInt8]) {
        for i in out.indices { out[i] = nextByte() }
    }

    private static let roundConstants: [UInt64] = [
        0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
        0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
        0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
        0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
        0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
        0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
    ]

    @inline(__always)
    private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 { (x << n) | (x >> (64 &- n)) }

    /// Keccak-f[1600] on 25 lanes, written out over a fixed-size tuple so it never allocates.
    private static func permute(_ st: inout (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                             UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                             UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                             UInt64)) {
        withUnsafeMutableBytes(of: &st) { raw in
            let a = raw.bindMemory(to: UInt64.self)
            for round in 0..<24 {
                // θ
                let c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
                let c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
                let c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
                let c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
                let c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
                let d0 = c4 ^ rotl(c1, 1)
                let d1 = c0 ^ rotl(c2, 1)
                let d2 = c1 ^ rotl(c3, 1)
                let d3 = c2 ^ rotl(c4, 1)
                let d4 = c3 ^ rotl(c0, 1)
                for y in stride(from: 0, to: 25, by: 5) {
                    a[y] ^= d0; a[y + 1] ^= d1; a[y + 2] ^= d2; a[y + 3] ^= d3; a[y + 4] ^= d4
                }
                // ρ and π: B[y, 2x+3y] = rot(A[x, y], r[x, y])
                let b00 = a[0]
                let b10 = rotl(a[1], 1), b20 = rotl(a[2], 62), b5 = rotl(a[3], 28), b15 = rotl(a[4], 27)
                let b16 = rotl(a[5], 36), b1 = rotl(a[6], 44), b11 = rotl(a[7], 6), b21 = rotl(a[8], 55)
                let b6 = rotl(a[9], 20), b7 = rotl(a[10], 3), b17 = rotl(a[11], 10), b2 = rotl(a[12], 43)
                let b12 = rotl(a[13], 25), b22 = rotl(a[14], 39), b23 = rotl(a[15], 41), b8 = rotl(a[16], 45)
                let b18 = rotl(a[17], 15), b3 = rotl(a[18], 21), b13 = rotl(a[19], 8), b14 = rotl(a[20], 18)
                let b24 = rotl(a[21], 2), b9 = rotl(a[22], 61), b19 = rotl(a[23], 56), b4 = rotl(a[24], 14)
                // χ
                a[0] = b00 ^ (~b1 & b2); a[1] = b1 ^ (~b2 & b3); a[2] = b2 ^ (~b3 & b4)
                a[3] = b3 ^ (~b4 & b00); a[4] = b4 ^ (~b00 & b1)
                a[5] = b5 ^ (~b6 & b7); a[6] = b6 ^ (~b7 & b8); a[7] = b7 ^ (~b8 & b9)
                a[8] = b8 ^ (~b9 & b5); a[9] = b9 ^ (~b5 & b6)
                a[10] = b10 ^ (~b11 & b12); a[11] = b11 ^ (~b12 & b13); a[12] = b12 ^ (~b13 & b14)
                a[13] = b13 ^ (~b14 & b10); a[14] = b14 ^ (~b10 & b11)
                a[15] = b15 ^ (~b16 & b17); a[16] = b16 ^ (~b17 & b18); a[17] = b17 ^ (~b18 & b19)
                a[18] = b18 ^ (~b19 & b15); a[19] = b19 ^ (~b15 & b16)
                a[20] = b20 ^ (~b21 & b22); a[21] = b21 ^ (~b22 & b23); a[22] = b22 ^ (~b23 & b24)
                a[23] = b23 ^ (~b24 & b20); a[24] = b24 ^ (~b20 & b21)
                // ι
                a[0] ^= roundConstants[round]
            }
        }
    }
}
