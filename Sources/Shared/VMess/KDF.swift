/// The VMess AEAD key derivation (vmess-protocol.md §3): HMAC nested as a hash function.
///
///     H0(m) = HMAC-SHA256(key: "VMess AEAD KDF", m)
///     Hi(m) = HMAC built on H(i-1) with key path[i-1] (64-byte block, 32-byte output)
///     KDF(secret, path...) = Hn(secret)
///
/// A KDF with n labels costs 2^n HMAC-SHA256 evaluations; it only runs during handshakes.
public enum KDF {
    static let root: [UInt8] = Array("VMess AEAD KDF".utf8)

    public static func derive(_ secret: [UInt8], _ path: [[UInt8]]) -> [UInt8] {
        hash(level: path.count, path, secret)
    }

    public static func derive(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { derive(secret, path) }

    /// First 16 bytes: AES-128 keys.
    public static func key16(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<16]) }

    /// First 12 bytes: GCM nonces.
    public static func nonce12(_ secret: [UInt8], _ path: [UInt8]...) -> [UInt8] { Array(derive(secret, path)[0..<12]) }

    private static func hash(level: Int, _ path: [[UInt8]], _ message: [UInt8]) -> [UInt8] {
        if level == 0 { return Digest.hmacSHA256(key: root, message) }
        var key = path[level - 1]
        if key.count > 64 { key = hash(level: level - 1, path, key) }
        key += [UInt8](repeating: 0, count: 64 - key.count)
        let inner = hash(level: level - 1, path, key.map { $0 ^ 0x36 } + message)
        return hash(level: level - 1, path, key.map { $0 ^ 0x5C } + inner)
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
