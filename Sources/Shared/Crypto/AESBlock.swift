import COpenSSL

/// One AES-128 key for single-block ECB operations (the AEAD AuthID, vmess-protocol.md §5.2).
/// The server keeps one decryptor per user so that matching a handshake costs one block decryption
/// per user and no key expansion.
public final class AESBlock {
    private let ctx: OpaquePointer
    private let encrypting: Bool

    public init(key: [UInt8], encrypting: Bool) throws {
        precondition(key.count == 16)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        self.ctx = ctx
        self.encrypting = encrypting
        let ok = key.withUnsafeBufferPointer {
            EVP_CipherInit_ex2(ctx, Ciphers.aes128ECB, $0.baseAddress, nil, encrypting ? 1 : 0, nil)
        }
        guard ok == 1 else { throw CryptoError("EVP_CipherInit_ex2(ECB)") }
        // Without this, the decrypt side would hold back the last block waiting for padding.
        EVP_CIPHER_CTX_set_padding(ctx, 0)
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Transforms exactly 16 bytes from `input` to `output` (may alias).
    @inline(__always)
    public func apply(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        var outl: Int32 = 0
        let r = EVP_CipherUpdate(ctx, output.assumingMemoryBound(to: UInt8.self), &outl,
                                 input.assumingMemoryBound(to: UInt8.self), 16)
        precondition(r == 1 && outl == 16, "AES-ECB block operation failed")
    }

    public func apply(_ block: [UInt8]) -> [UInt8] {
        precondition(block.count == 16)
        var out = [UInt8](repeating: 0, count: 16)
        block.withUnsafeBytes { i in out.withUnsafeMutableBytes { o in apply(i.baseAddress!, o.baseAddress!) } }
        return out
    }
}
