import COpenSSL

/// One-shot message digests and HMAC on libcrypto. Only used on handshake paths (key derivation,
/// identity), never per chunk.
public enum Digest {
    public static func md5(_ data: UnsafeRawBufferPointer) -> [UInt8] { run(Ciphers.md5, data, 16) }
    public static func sha1(_ data: UnsafeRawBufferPointer) -> [UInt8] { run(Ciphers.sha1, data, 20) }
    public static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] { run(Ciphers.sha256, data, 32) }

    public static func md5(_ data: [UInt8]) -> [UInt8] { data.withUnsafeBytes { md5($0) } }
    public static func sha1(_ data: [UInt8]) -> [UInt8] { data.withUnsafeBytes { sha1($0) } }
    public static func sha256(_ data: [UInt8]) -> [UInt8] { data.withUnsafeBytes { sha256($0) } }

    private static func run(_ md: OpaquePointer, _ data: UnsafeRawBufferPointer, _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var outLen: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { o in
            EVP_Digest(data.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, data.count, o.baseAddress, &outLen, md, nil)
        }
        precondition(ok == 1 && Int(outLen) == size, "EVP_Digest failed")
        return out
    }

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] { hmac(Ciphers.sha256, key, data, 32) }
    public static func hmacMD5(key: [UInt8], _ data: [UInt8]) -> [UInt8] { hmac(Ciphers.md5, key, data, 16) }

    private static func hmac(_ md: OpaquePointer, _ key: [UInt8], _ data: [UInt8], _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var outLen: UInt32 = 0
        let r = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(md, k.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(k.count),
                         d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, o.baseAddress, &outLen)
                }
            }
        }
        precondition(r != nil && Int(outLen) == size, "HMAC failed")
        return out
    }
}

/// Cryptographically secure random bytes from libcrypto's DRBG (cheap: no syscall per call).
public enum SecureRandom {
    public static func fill(_ buf: UnsafeMutableRawBufferPointer) {
        guard buf.count > 0 else { return }
        let r = RAND_bytes(buf.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(buf.count))
        precondition(r == 1, "RAND_bytes failed")
    }

    public static func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }
}
