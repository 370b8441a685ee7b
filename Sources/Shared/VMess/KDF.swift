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

        func h0(_ message: [UInt8]) -> [UInt8] {
            var inner = [UInt8](repeating: 0, count: 32)
            var out = [UInt8](repeating: 0, count: 32)
            var n: UInt32 = 0
            let states = KDF.padStates
            // Calls stay outside precondition(): its condition is not evaluated under -Ounchecked.
            var ok = EVP_MD_CTX_copy_ex(ctx, states.inner) == 1
            ok = ok && EVP_DigestUpdate(ctx, message, message.count) == 1
            ok = ok && EVP_DigestFinal_ex(ctx, &inner, &n) == 1
            ok = ok && EVP_MD_CTX_copy_ex(ctx, states.outer) == 1
            ok = ok && EVP_DigestUpdate(ctx, inner, 32) == 1
            ok = ok && EVP_DigestFinal_ex(ctx, &out, &n) == 1
            precondition(ok, "KDF digest failed")
            return out
        }
    }

    public static func derive(_ secret: [UInt8], _ path: [[UInt8]]) -> [UInt8] {
        let scratch = Scratch()
        return hash(level: path.count, path, secret, scratch)
    }

    public static func derive(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { derive(secret, path) }

    /// First 16 bytes: AES-128 keys.
    public static func key16(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<16]) }

    /// First 12 bytes: GCM nonces.
    public static func nonce12(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<12]) }

    private static func hash(level: Int, _ path: [[UInt8]], _ message: [UInt8], _ s: Scratch) -> [UInt8] {
        if level == 0 { return s.h0(message) }
        var key = path[level - 1]
        if key.count > 64 { key = hash(level: level - 1, path, key, s) }
        key += [UInt8](repeating: 0, count: 64 - key.count)
        let inner = hash(level: level - 1, path, key.map { $0 ^ 0x36 } + message, s)
        return hash(level: level - 1, path, key.map { $0 ^ 0x5C } + inner, s)
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
