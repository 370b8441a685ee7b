import COpenSSL

/// An AEAD key bound to one cipher context, for one direction of one connection.
///
/// The context is keyed once; each chunk only re-sets the 12-byte nonce (EVP_CipherInit_ex2 with a
/// nil key keeps the key schedule), so sealing or opening a chunk allocates nothing. Seal and open work
/// in place on caller memory (libcrypto allows out == in for both modes).
///
/// A keyed context is about 960 bytes of heap (AES-GCM): two of them were a sixth of what an idle
/// proxied connection kept. `releaseContext` frees it while the connection is quiet; the next seal
/// or open keys a new one from the key kept inline here (one allocation and key schedule, ~1 µs).
public final class AEADCipher {
    public enum Algorithm: Sendable {
        case aes128GCM, chacha20Poly1305

        public var keySize: Int { self == .aes128GCM ? 16 : 32 }
    }
    public static let tagSize = 16
    public static let nonceSize = 12

    public let algorithm: Algorithm
    private var ctx: OpaquePointer?
    private let cipher: OpaquePointer
    private let encrypting: Bool
    /// The key (16 or 32 bytes, the rest zero), inline so that keeping it costs no allocation.
    private let key: (UInt64, UInt64, UInt64, UInt64)

    /// `key` is 16 bytes for AES-128-GCM and 32 bytes for ChaCha20-Poly1305.
    public convenience init(_ algorithm: Algorithm, key: [UInt8], encrypting: Bool) throws {
        switch algorithm {
        case .aes128GCM: try self.init(algorithm, cipher: Ciphers.aes128GCM, key: key, encrypting: encrypting)
        case .chacha20Poly1305: try self.init(algorithm, cipher: Ciphers.chacha20Poly1305, key: key, encrypting: encrypting)
        }
    }

    /// With an explicit libcrypto cipher object for `algorithm` (Ciphers' start-up check).
    init(_ algorithm: Algorithm, cipher: OpaquePointer, key: [UInt8], encrypting: Bool) throws {
        precondition(key.count == algorithm.keySize, "\(algorithm) key must be \(algorithm.keySize) bytes")
        self.algorithm = algorithm
        self.encrypting = encrypting
        self.cipher = cipher
        var inline: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &inline) { $0.copyBytes(from: key) }
        self.key = inline
        ctx = try keyedContext()
    }

    deinit { releaseContext() }

    /// A new context keyed with `key`, in this cipher's direction.
    private func keyedContext() throws -> OpaquePointer {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        let ok = withUnsafeBytes(of: key) {
            EVP_CipherInit_ex2(ctx, cipher, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, encrypting ? 1 : 0, nil)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(ctx)
            throw CryptoError("EVP_CipherInit_ex2")
        }
        return ctx
    }

    /// The keyed context, keyed anew after `releaseContext`.
    @inline(__always)
    private func context() throws -> OpaquePointer {
        if let ctx { return ctx }
        let fresh = try keyedContext()
        ctx = fresh
        return fresh
    }

    /// Frees the keyed context (a quiet connection's memory); the next seal or open makes another.
    public func releaseContext() {
        guard let ctx else { return }
        EVP_CIPHER_CTX_free(ctx)
        self.ctx = nil
    }

    /// Whether a keyed context is held (tests).
    var holdsContext: Bool { ctx != nil }

    /// Encrypts `data` in place and writes the 16-byte tag to `tag`.
    @inline(__always)
    public func seal(nonce: UnsafeRawPointer, data: UnsafeMutableRawBufferPointer,
                     tag: UnsafeMutableRawPointer, aad: UnsafeRawBufferPointer? = nil) throws {
        try seal(nonce: nonce, input: UnsafeRawBufferPointer(data), output: data.baseAddress, tag: tag, aad: aad)
    }

    /// Encrypts `input` into `output` (which may equal the input) and writes the 16-byte tag.
    /// Used by the body encoder to encrypt straight from the target's read buffer into the
    /// outgoing chunk, so the payload is touched once.
    @inline(__always)
    public func seal(nonce: UnsafeRawPointer, input: UnsafeRawBufferPointer, output: UnsafeMutableRawPointer?,
                     tag: UnsafeMutableRawPointer, aad: UnsafeRawBufferPointer? = nil) throws {
        precondition(encrypting)
        let ctx = try context()
        guard EVP_CipherInit_ex2(ctx, nil, nil, nonce.assumingMemoryBound(to: UInt8.self), 1, nil) == 1 else {
            throw CryptoError("EVP_CipherInit_ex2(nonce)")
        }
        var outl: Int32 = 0
        if let aad, aad.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                   Int32(aad.count)) == 1 else { throw CryptoError("EVP_CipherUpdate(aad)") }
        }
        if input.count > 0, let output {
            guard EVP_CipherUpdate(ctx, output.assumingMemoryBound(to: UInt8.self), &outl,
                                   input.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1 else {
                throw CryptoError("EVP_CipherUpdate")
            }
        }
        var finl: Int32 = 0
        var scratch: UInt8 = 0
        guard EVP_CipherFinal_ex(ctx, &scratch, &finl) == 1 else { throw CryptoError("EVP_CipherFinal_ex") }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1 else {
            throw CryptoError("EVP_CTRL_AEAD_GET_TAG")
        }
    }

    /// Decrypts `data` in place and verifies `tag`. Returns false when authentication fails (the
    /// content of `data` is then garbage and must not be used).
    @inline(__always)
    public func open(nonce: UnsafeRawPointer, data: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer,
                     aad: UnsafeRawBufferPointer? = nil) -> Bool {
        precondition(!encrypting)
        // Keying can fail only for want of memory; the chunk is then refused like a forged one.
        guard let ctx = try? context(), EVP_CipherInit_ex2(ctx, nil, nil, nonce.assumingMemoryBound(to: UInt8.self), 0, nil) == 1 else {
            ERR_clear_error()
            return false
        }
        var outl: Int32 = 0
        if let aad, aad.count > 0 {
            guard EVP_CipherUpdate(ctx, nil, &outl, aad.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                   Int32(aad.count)) == 1 else { ERR_clear_error(); return false }
        }
        if data.count > 0 {
            let p = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard EVP_CipherUpdate(ctx, p, &outl, p, Int32(data.count)) == 1 else { ERR_clear_error(); return false }
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, UnsafeMutableRawPointer(mutating: tag)) == 1 else {
            ERR_clear_error()
            return false
        }
        var finl: Int32 = 0
        var scratch: UInt8 = 0
        guard EVP_CipherFinal_ex(ctx, &scratch, &finl) == 1 else { ERR_clear_error(); return false }
        return true
    }
}

extension AEADCipher {
    /// Convenience for small one-off items (headers): returns ciphertext ‖ tag.
    public func seal(nonce: [UInt8], plaintext: [UInt8], aad: [UInt8] = []) throws -> [UInt8] {
        var out = plaintext + [UInt8](repeating: 0, count: AEADCipher.tagSize)
        let n = plaintext.count
        try out.withUnsafeMutableBytes { buf in
            try nonce.withUnsafeBytes { nb in
                try aad.withUnsafeBytes { ab in
                    try seal(nonce: nb.baseAddress!, data: UnsafeMutableRawBufferPointer(rebasing: buf[0..<n]),
                             tag: buf.baseAddress! + n, aad: ab)
                }
            }
        }
        return out
    }

    /// Convenience for small one-off items: `sealed` is ciphertext ‖ tag; nil when authentication fails.
    public func open(nonce: [UInt8], sealed: [UInt8], aad: [UInt8] = []) -> [UInt8]? {
        guard sealed.count >= AEADCipher.tagSize else { return nil }
        var data = sealed
        let n = sealed.count - AEADCipher.tagSize
        let ok = data.withUnsafeMutableBytes { buf in
            nonce.withUnsafeBytes { nb in
                aad.withUnsafeBytes { ab in
                    open(nonce: nb.baseAddress!, data: UnsafeMutableRawBufferPointer(rebasing: buf[0..<n]),
                         tag: UnsafeRawPointer(buf.baseAddress! + n), aad: ab)
                }
            }
        }
        return ok ? Array(data[0..<n]) : nil
    }
}

extension AEADCipher {
    /// Whether `candidate` seals exactly as `reference` does (an empty chunk and a 100-byte one with
    /// additional data, two nonces on one context, as chunks go), opens what it sealed, and refuses
    /// a flipped tag bit. Ciphers uses it to trust libcrypto's direct path only where it agrees.
    static func agrees(_ candidate: OpaquePointer, with reference: OpaquePointer, _ algorithm: Algorithm) -> Bool {
        let key = (0..<algorithm.keySize).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let payload = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let aad: [UInt8] = [0x56, 0x4d, 0x65, 0x73, 0x73]
        guard let sealer = try? AEADCipher(algorithm, cipher: candidate, key: key, encrypting: true),
              let opener = try? AEADCipher(algorithm, cipher: candidate, key: key, encrypting: false),
              let reference = try? AEADCipher(algorithm, cipher: reference, key: key, encrypting: true) else { return false }
        for (n, plaintext) in [[UInt8](), payload].enumerated() {
            let nonce = [UInt8](repeating: UInt8(n), count: 2) + [UInt8](repeating: 0xa5, count: 10)
            let extra = n == 0 ? [] : aad
            guard let sealed = try? sealer.seal(nonce: nonce, plaintext: plaintext, aad: extra),
                  let expected = try? reference.seal(nonce: nonce, plaintext: plaintext, aad: extra),
                  sealed == expected, opener.open(nonce: nonce, sealed: sealed, aad: extra) == plaintext else { return false }
            var forged = sealed
            forged[forged.count - 1] ^= 1
            guard opener.open(nonce: nonce, sealed: forged, aad: extra) == nil else { return false }
        }
        return true
    }
}
