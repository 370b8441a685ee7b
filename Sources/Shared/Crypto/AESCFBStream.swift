import COpenSSL

/// AES-128-CFB (128-bit feedback) as a byte stream: successive calls continue the same keystream.
/// Used by the legacy header (§7) and the legacy body security (§9.10).
public final class AESCFBStream {
    private let ctx: OpaquePointer

    public init(key: [UInt8], iv: [UInt8], encrypting: Bool) throws {
        precondition(key.count == 16 && iv.count == 16)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        self.ctx = ctx
        let ok = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                EVP_CipherInit_ex2(ctx, Ciphers.aes128CFB, k.baseAddress, v.baseAddress, encrypting ? 1 : 0, nil)
            }
        }
        guard ok == 1 else { throw CryptoError("EVP_CipherInit_ex2(CFB)") }
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Transforms bytes in place, continuing the stream.
    @inline(__always)
    public func apply(_ data: UnsafeMutableRawBufferPointer) {
        guard data.count > 0 else { return }
        var outl: Int32 = 0
        let p = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let r = EVP_CipherUpdate(ctx, p, &outl, p, Int32(data.count))
        precondition(r == 1 && Int(outl) == data.count, "AES-CFB stream operation failed")
    }

    public func apply(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        out.withUnsafeMutableBytes { apply($0) }
        return out
    }
}
