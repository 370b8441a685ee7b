import COpenSSL

/// The VMess AEAD key derivation (vmess-protocol.md §3): HMAC nested as a hash function.
///
///     H0(m) = HMAC-SHA256(key: "VMess AEAD KDF", m)
///     Hi(m) = HMAC built on H(i-1) with key path[i-1] (64-byte block, 32-byte output)
///     KDF(secret, path...) = Hn(secret)
///
/// A KDF with n labels costs 2^n evaluations of H0; a handshake runs about 40 of them. H0's key
/// is fixed, so its inner and outer pad blocks are absorbed once per process and each H0 is two
/// SHA-256 continuations from those states (no HMAC set-up, no algorithm lookup per call; the
/// one-shot HMAC() of OpenSSL 3 fetches the algorithms by name every time).
///
/// The recursion builds each level's messages (`key⊕pad ‖ m`) in one stack buffer laid out per
/// level, so a derivation allocates only its result: building them as arrays cost 75 mallocs per
/// 3-label derive, against 19 now, nearly all of them OpenSSL's (Benchmarks/README.md, micro benchmarks).
public enum KDF {
    static let root: [UInt8] = Array("VMess AEAD KDF".utf8)

    /// SHA-256 states after absorbing root⊕ipad and root⊕opad. Read-only after creation.
    nonisolated(unsafe) private static let padStates: (inner: OpaquePointer, outer: OpaquePointer) = {
        func state(_ pad: UInt8) -> OpaquePointer {
            let ctx = EVP_MD_CTX_new()!
            var block = root + [UInt8](repeating: 0, count: 64 - root.count)
            for i in block.indices { block[i] ^= pad }
            let ok = EVP_DigestInit_ex2(ctx, Ciphers.sha256, nil) == 1 && EVP_DigestUpdate(ctx, block, 64) == 1
            precondition(ok, "SHA-256 pad state")
            return ctx
        }
        return (state(0x36), state(0x5C))
    }()

    /// One derivation's scratch context (created per derive, reused by all its H0 evaluations).
    private final class Scratch {
        let ctx = EVP_MD_CTX_new()!
        deinit { EVP_MD_CTX_free(ctx) }

        /// H0(message) into `out` (32 bytes).
        func h0(_ message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
            var inner = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            var n: UInt32 = 0
            let states = KDF.padStates
            // Calls stay outside precondition(): its condition is not evaluated under -Ounchecked.
            let ok = withUnsafeMutableBytes(of: &inner) { innerBytes -> Bool in
                let i = innerBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var ok = EVP_MD_CTX_copy_ex(ctx, states.inner) == 1
                ok = ok && EVP_DigestUpdate(ctx, message.baseAddress, message.count) == 1
                ok = ok && EVP_DigestFinal_ex(ctx, i, &n) == 1
                ok = ok && EVP_MD_CTX_copy_ex(ctx, states.outer) == 1
                ok = ok && EVP_DigestUpdate(ctx, i, 32) == 1
                ok = ok && EVP_DigestFinal_ex(ctx, out.assumingMemoryBound(to: UInt8.self), &n) == 1
                return ok
            }
            precondition(ok, "KDF digest failed")
        }
    }

    public static func derive(_ secret: [UInt8], _ path: [[UInt8]]) -> [UInt8] {
        let scratch = Scratch()
        // Each level's frame: a buffer of 64 + max(|message|, 32) bytes for the inner call's
        // `key⊕ipad ‖ message`, reused for the outer call's `key⊕opad ‖ inner digest`; then 32
        // bytes for the inner digest and 32 for a hashed over-long key. A level's message is at
        // most its parent's buffer, or a label longer than a block (hashed as HMAC's key).
        var arena = 0
        var message = secret.count
        let longestLabel = path.reduce(0) { max($0, $1.count) }
        for _ in 0..<path.count {
            let length = 64 + max(message, 32)
            arena += length + 64
            message = max(length, longestLabel)
        }
        return [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            withUnsafeTemporaryAllocation(byteCount: max(arena, 1), alignment: 16) { frames in
                secret.withUnsafeBytes { s in
                    hash(level: path.count, path, s, into: UnsafeMutableRawPointer(out.baseAddress!),
                         frames: frames.baseAddress!, scratch)
                }
            }
            count = 32
        }
    }

    public static func derive(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { derive(secret, path) }

    /// First 16 bytes: AES-128 keys.
    public static func key16(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<16]) }

    /// First 12 bytes: GCM nonces.
    public static func nonce12(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<12]) }

    /// H_level(message) into `out`; `frames` holds this level's frame and those of the levels below.
    private static func hash(level: Int, _ path: [[UInt8]], _ message: UnsafeRawBufferPointer,
                             into out: UnsafeMutableRawPointer, frames: UnsafeMutableRawPointer, _ s: Scratch) {
        if level == 0 { return s.h0(message, into: out) }
        let length = 64 + max(message.count, 32)
        let buffer = frames, innerDigest = frames + length, longKey = innerDigest + 32
        let below = longKey + 32
        path[level - 1].withUnsafeBytes { label in
            var key = label
            if key.count > 64 {
                // HMAC: a key longer than the block is replaced by its hash (under H(level-1)).
                hash(level: level - 1, path, label, into: longKey, frames: below, s)
                key = UnsafeRawBufferPointer(start: longKey, count: 32)
            }
            pad(buffer, key, 0x36)
            if message.count > 0 { (buffer + 64).copyMemory(from: message.baseAddress!, byteCount: message.count) }
            hash(level: level - 1, path, UnsafeRawBufferPointer(start: buffer, count: 64 + message.count),
                 into: innerDigest, frames: below, s)
            pad(buffer, key, 0x5C)
            (buffer + 64).copyMemory(from: innerDigest, byteCount: 32)
            hash(level: level - 1, path, UnsafeRawBufferPointer(start: buffer, count: 96), into: out, frames: below, s)
        }
    }

    /// The HMAC key block: `key` zero-padded to 64 bytes, each byte XORed with `byte`.
    private static func pad(_ block: UnsafeMutableRawPointer, _ key: UnsafeRawBufferPointer, _ byte: UInt8) {
        let b = block.assumingMemoryBound(to: UInt8.self)
        for i in 0..<64 { b[i] = (i < key.count ? key[i] : 0) ^ byte }
    }
}

/// The labels of vmess-protocol.md §1.1, as bytes.
public enum KDFLabel {
    public static let authID = Array("AES Auth ID Encryption".utf8)
    public static let headerLengthKey = Array("VMess Header AEAD Key_Length".utf8)
    public static let headerLengthNonce = Array("VMess Header AEAD Nonce_Length".utf8)
    public static let headerPayloadKey = Array("VMess Header AEAD Key".utf8)
    public static let headerPayloadNonce = Array("VMess Header AEAD Nonce".utf8)
    public static let responseLengthKey = Array("AEAD Resp Header Len Key".utf8)
    public static let responseLengthNonce = Array("AEAD Resp Header Len IV".utf8)
    public static let responseKey = Array("AEAD Resp Header Key".utf8)
    public static let responseNonce = Array("AEAD Resp Header IV".utf8)
    public static let authLength = Array("auth_len".utf8)
}
