import COpenSSL
import CShims

/// The libcrypto algorithm objects, fetched once per process (EVP_*_fetch does a provider lookup
/// with locking; doing it per connection or per chunk would be a measurable cost).
/// The objects are immutable and reference counted by OpenSSL; they live for the whole process.
///
/// The two AEAD ciphers, which run once per chunk, are libcrypto's built-in implementations called
/// directly (DirectCiphers.c: no OSSL_PARAM traffic per nonce and tag, ~150 ns a chunk) whenever
/// this libcrypto has that path and it seals and opens exactly as the provider's cipher does;
/// otherwise the provider's.
public enum Ciphers {
    nonisolated(unsafe) static let aes128GCM: OpaquePointer =
        directAEAD(Int32(VMESSD_DIRECT_AES_128_GCM), .aes128GCM, provided: "AES-128-GCM")
    nonisolated(unsafe) static let chacha20Poly1305: OpaquePointer =
        directAEAD(Int32(VMESSD_DIRECT_CHACHA20_POLY1305), .chacha20Poly1305, provided: "ChaCha20-Poly1305")
    nonisolated(unsafe) static let aes128ECB: OpaquePointer = fetchCipher("AES-128-ECB")
    nonisolated(unsafe) static let aes128CFB: OpaquePointer = fetchCipher("AES-128-CFB")
    nonisolated(unsafe) static let md5: OpaquePointer = fetchDigest("MD5")
    nonisolated(unsafe) static let sha1: OpaquePointer = fetchDigest("SHA1")
    nonisolated(unsafe) static let sha256: OpaquePointer = fetchDigest("SHA256")

    private static func fetchCipher(_ name: String) -> OpaquePointer {
        guard let c = EVP_CIPHER_fetch(nil, name, nil) else {
            fatalError("libcrypto has no \(name): \(CryptoError("EVP_CIPHER_fetch"))")
        }
        return c
    }

    /// The direct cipher `which` when libcrypto has it and it agrees with the provider's `provided`.
    /// The one not kept is freed: nothing else refers to it (libcrypto's fetch cache may drop its
    /// own reference to a fetched cipher, which LeakSanitizer then reports as ours).
    private static func directAEAD(_ which: Int32, _ algorithm: AEADCipher.Algorithm, provided name: String) -> OpaquePointer {
        let provided = fetchCipher(name)
        guard let raw = vmessd_direct_aead_cipher(which) else { return provided }
        guard AEADCipher.agrees(OpaquePointer(raw), with: provided, algorithm) else {
            vmessd_direct_aead_cipher_free(raw)
            return provided
        }
        EVP_CIPHER_free(provided)
        return OpaquePointer(raw)
    }

    /// Whether the AEAD ciphers run on libcrypto's direct path (tests, and the start-up log).
    public static var aeadIsDirect: Bool {
        EVP_CIPHER_get0_provider(aes128GCM) == nil && EVP_CIPHER_get0_provider(chacha20Poly1305) == nil
    }

    private static func fetchDigest(_ name: String) -> OpaquePointer {
        guard let d = EVP_MD_fetch(nil, name, nil) else {
            fatalError("libcrypto has no \(name): \(CryptoError("EVP_MD_fetch"))")
        }
        return d
    }

    /// Touch every algorithm so that a broken libcrypto fails at start-up, not on the first client.
    public static func preload() {
        _ = [aes128GCM, chacha20Poly1305, aes128ECB, aes128CFB, md5, sha1, sha256]
    }
}
