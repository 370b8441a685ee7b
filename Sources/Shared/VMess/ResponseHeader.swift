/// The response header (vmess-protocol.md §8): plain `V ‖ option ‖ command ‖ cmdLen ‖ cmdData`,
/// servers send `V 00 00 00`.
///
/// AEAD:   GCM(KDF16(respKey,"AEAD Resp Header Len Key"), KDF(respIV,"AEAD Resp Header Len IV")[:12], BE16(n))
///         ‖ GCM(KDF16(respKey,"AEAD Resp Header Key"), KDF(respIV,"AEAD Resp Header IV")[:12], header)
/// Legacy: AES-128-CFB(respKey, respIV) over the header; the stream continues into a LEGACY body.
public enum ResponseHeader {
    public struct BodyKeys: Equatable, Sendable {
        public var key: [UInt8]
        public var iv: [UInt8]
    }

    /// respKey/respIV: SHA-256 halves for the AEAD header, MD5 for the legacy header (§8.1).
    public static func bodyKeys(request: RequestHeader, legacy: Bool) -> BodyKeys {
        legacy
            ? BodyKeys(key: Digest.md5(request.requestKey), iv: Digest.md5(request.requestIV))
            : BodyKeys(key: Array(Digest.sha256(request.requestKey)[0..<16]), iv: Array(Digest.sha256(request.requestIV)[0..<16]))
    }

    /// `V 00 00 00`, or with the switch-account command of a `detour` (`V 00 01 n data`).
    public static func plain(responseAuth: UInt8, command: SwitchAccountCommand? = nil) -> [UInt8] {
        guard let command else { return [responseAuth, 0, 0, 0] }
        let data = command.encode()
        return [responseAuth, 0, SwitchAccountCommand.code, UInt8(data.count)] + data
    }

    public static func sealAEAD(_ header: [UInt8], keys: BodyKeys) throws -> [UInt8] {
        let n = UInt16(header.count)
        let lenCipher = try AEADCipher(.aes128GCM, key: KDF.key16(keys.key, KDFLabel.responseLengthKey), encrypting: true)
        let encLen = try lenCipher.seal(nonce: KDF.nonce12(keys.iv, KDFLabel.responseLengthNonce),
                                        plaintext: [UInt8(n >> 8), UInt8(n & 0xFF)])
        let hdrCipher = try AEADCipher(.aes128GCM, key: KDF.key16(keys.key, KDFLabel.responseKey), encrypting: true)
        return encLen + (try hdrCipher.seal(nonce: KDF.nonce12(keys.iv, KDFLabel.responseNonce), plaintext: header))
    }

    /// Client side: opens the 18-byte length field. nil = authentication failure.
    public static func openAEADLength(_ sealed: [UInt8], keys: BodyKeys) -> Int? {
        guard let c = try? AEADCipher(.aes128GCM, key: KDF.key16(keys.key, KDFLabel.responseLengthKey), encrypting: false),
              let p = c.open(nonce: KDF.nonce12(keys.iv, KDFLabel.responseLengthNonce), sealed: sealed), p.count == 2
        else { return nil }
        return Int(p[0]) << 8 | Int(p[1])
    }

    public static func openAEADHeader(_ sealed: [UInt8], keys: BodyKeys) -> [UInt8]? {
        guard let c = try? AEADCipher(.aes128GCM, key: KDF.key16(keys.key, KDFLabel.responseKey), encrypting: false)
        else { return nil }
        return c.open(nonce: KDF.nonce12(keys.iv, KDFLabel.responseNonce), sealed: sealed)
    }
}
