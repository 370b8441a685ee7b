import COpenSSL

/// The libcrypto algorithm objects, fetched once per process (EVP_*_fetch does a provider lookup
/// with locking; doing it per connection or per chunk would be a measurable cost).
/// The objects are immutable and reference counted by OpenSSL; they live for the whole process.
public enum Ciphers {
    nonisolated(unsafe) static let aes128GCM: OpaquePointer = fetchCipher("AES-128-GCM")
    nonisolated(unsafe) static let chacha20Poly1305: OpaquePointer = fetchCipher("ChaCha20-Poly1305")
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
