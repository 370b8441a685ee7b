/// The AEAD request header (vmess-protocol.md §5):
///
///     0        16             34          42               58+L
///     +--------+--------------+-----------+----------------+------ body …
///     | EAuthID| GCM(BE16(L)) | ConnNonce | GCM(command)   |
///     |  16    |   2 + 16     |     8     |    L + 16      |
///
/// Keys and nonces are KDFs of cmdKey with EAuthID and ConnNonce as path elements; EAuthID is the AAD.
public enum AEADHeader {
    public static let fixedPrefix = 16 + 18 + 8

    /// Client side: the whole header for `request`, sealed for the user `cmdKey`.
    public static func seal(_ request: RequestHeader, cmdKey: [UInt8], time: Int64,
                            authRandom: [UInt8] = SecureRandom.bytes(4),
                            connectionNonce: [UInt8] = SecureRandom.bytes(8)) throws -> [UInt8] {
        let eAuthID = try AuthID.create(cmdKey: cmdKey, time: time, random: authRandom)
        let command = request.encodeCommandSection()
        let keys = HeaderKeys(cmdKey: cmdKey, eAuthID: eAuthID, connectionNonce: connectionNonce)
        let length = UInt16(command.count)
        let encLen = try AEADCipher(.aes128GCM, key: keys.lengthKey, encrypting: true)
            .seal(nonce: keys.lengthNonce, plaintext: [UInt8(length >> 8), UInt8(length & 0xFF)], aad: eAuthID)
        let encCmd = try AEADCipher(.aes128GCM, key: keys.payloadKey, encrypting: true)
            .seal(nonce: keys.payloadNonce, plaintext: command, aad: eAuthID)
        return eAuthID + encLen + connectionNonce + encCmd
    }

    struct HeaderKeys {
        var lengthKey: [UInt8], lengthNonce: [UInt8], payloadKey: [UInt8], payloadNonce: [UInt8]
        init(cmdKey: [UInt8], eAuthID: [UInt8], connectionNonce: [UInt8]) {
            lengthKey = Array(KDF.derive(cmdKey, KDFLabel.headerLengthKey, eAuthID, connectionNonce)[0..<16])
            lengthNonce = Array(KDF.derive(cmdKey, KDFLabel.headerLengthNonce, eAuthID, connectionNonce)[0..<12])
            payloadKey = Array(KDF.derive(cmdKey, KDFLabel.headerPayloadKey, eAuthID, connectionNonce)[0..<16])
            payloadNonce = Array(KDF.derive(cmdKey, KDFLabel.headerPayloadNonce, eAuthID, connectionNonce)[0..<12])
        }
    }

    /// Server side, after the AuthID matched a user: opens the 18-byte length field. nil = auth failure.
    public static func openLength(cmdKey: [UInt8], eAuthID: [UInt8], connectionNonce: [UInt8], sealed: [UInt8]) -> Int? {
        let key = Array(KDF.derive(cmdKey, KDFLabel.headerLengthKey, eAuthID, connectionNonce)[0..<16])
        let nonce = Array(KDF.derive(cmdKey, KDFLabel.headerLengthNonce, eAuthID, connectionNonce)[0..<12])
        guard let cipher = try? AEADCipher(.aes128GCM, key: key, encrypting: false),
              let plain = cipher.open(nonce: nonce, sealed: sealed, aad: eAuthID), plain.count == 2 else { return nil }
        return Int(plain[0]) << 8 | Int(plain[1])
    }

    /// Server side: opens the command section (L + 16 bytes). nil = auth failure.
    public static func openCommand(cmdKey: [UInt8], eAuthID: [UInt8], connectionNonce: [UInt8], sealed: [UInt8]) -> [UInt8]? {
        let key = Array(KDF.derive(cmdKey, KDFLabel.headerPayloadKey, eAuthID, connectionNonce)[0..<16])
        let nonce = Array(KDF.derive(cmdKey, KDFLabel.headerPayloadNonce, eAuthID, connectionNonce)[0..<12])
        guard let cipher = try? AEADCipher(.aes128GCM, key: key, encrypting: false) else { return nil }
        return cipher.open(nonce: nonce, sealed: sealed, aad: eAuthID)
    }
}
