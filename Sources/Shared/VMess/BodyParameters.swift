/// Everything that decides how one direction of a VMess body is framed (vmess-protocol.md §9.1-9.2).
public struct BodyParameters: Sendable {
    public enum Cipher: Equatable, Sendable {
        case aes128GCM, chacha20Poly1305
        /// NONE with chunk stream: plain length-prefixed chunks.
        case none
        /// AES-128-CFB over the (chunked or raw) stream.
        case legacy
        /// No framing at all: NONE without S ("zero").
        case raw
    }

    public var cipher: Cipher
    public var options: RequestOptions
    /// UDP (command 2): one chunk per datagram, padding applies to NONE too.
    public var packet: Bool
    public var key: [UInt8]
    public var iv: [UInt8]
    /// AuthenticatedLength key material: always the *request* key/IV, both directions (§9.5).
    public var requestKey: [UInt8]
    public var requestIV: [UInt8]

    public enum SetupError: Error, Equatable {
        case unsupportedSecurity(UInt8)
        case paddingWithoutMasking
    }

    /// Parameters for the client→server body.
    public static func request(_ h: RequestHeader) throws(SetupError) -> BodyParameters {
        try make(h, key: h.requestKey, iv: h.requestIV)
    }

    /// Parameters for the server→client body.
    public static func response(_ h: RequestHeader, keys: ResponseHeader.BodyKeys) throws(SetupError) -> BodyParameters {
        try make(h, key: keys.key, iv: keys.iv)
    }

    private static func make(_ h: RequestHeader, key: [UInt8], iv: [UInt8]) throws(SetupError) -> BodyParameters {
        if h.options.contains(.globalPadding) && !h.options.contains(.chunkMasking) { throw .paddingWithoutMasking }
        let chunked = h.options.contains(.chunkStream)
        let cipher: Cipher
        switch h.securityCode {
        case Security.aes128GCM.rawValue: cipher = .aes128GCM
        case Security.chacha20Poly1305.rawValue: cipher = .chacha20Poly1305
        case Security.none.rawValue: cipher = chunked ? .none : .raw
        // Code 0 ("unknown") is treated as legacy by v2fly for backward compatibility (§6.3).
        case Security.legacy.rawValue, Security.unknown.rawValue: cipher = .legacy
        default: throw .unsupportedSecurity(h.securityCode)
        }
        return BodyParameters(cipher: cipher, options: h.options, packet: h.command == RequestCommand.udp.rawValue,
                              key: key, iv: iv, requestKey: h.requestKey, requestIV: h.requestIV)
    }

    var chunked: Bool { options.contains(.chunkStream) || cipher == .aes128GCM || cipher == .chacha20Poly1305 }
    var masking: Bool { options.contains(.chunkMasking) }
    var padding: Bool { options.contains(.globalPadding) && options.contains(.chunkMasking) }
    var authenticatedLength: Bool {
        options.contains(.authenticatedLength) && (cipher == .aes128GCM || cipher == .chacha20Poly1305)
    }

    /// Per-chunk authentication overhead inside Lval.
    var overhead: Int {
        switch cipher {
        case .aes128GCM, .chacha20Poly1305: 16
        case .legacy: 4
        case .none, .raw: 0
        }
    }

    var aeadAlgorithm: AEADCipher.Algorithm? {
        switch cipher {
        case .aes128GCM: .aes128GCM
        case .chacha20Poly1305: .chacha20Poly1305
        default: nil
        }
    }

    /// AES-GCM uses the 16-byte key; ChaCha20-Poly1305 expands it to MD5(k) ‖ MD5(MD5(k)) (§9.4).
    static func aeadKey(_ algorithm: AEADCipher.Algorithm, _ key16: [UInt8]) -> [UInt8] {
        switch algorithm {
        case .aes128GCM: return key16
        case .chacha20Poly1305:
            let a = Digest.md5(key16)
            return a + Digest.md5(a)
        }
    }
}
