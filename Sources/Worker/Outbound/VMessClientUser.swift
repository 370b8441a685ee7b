import Shared

/// One user of a vmess outbound with everything the client derives from it once (§2): the id and
/// cmdKey, the legacy alter IDs when alterId > 0, and the body security it sends (§9.13).
struct VMessClientUser {
    let id: UserID
    /// Keys for the legacy auth hash (§7.1); empty selects the AEAD header.
    let alterIDs: [[UInt8]]
    let security: Security
    let options: RequestOptions
    /// The configured `security` (nil: auto), for an account a switch-account command creates.
    let securityName: String?
    /// For logs: the first 8 hex digits of the id.
    var shortID: String { id.shortText }

    init(_ user: VMessUser) {
        // The parser stores ids in canonical form, so this cannot fail for a validated config.
        id = UserID(text: user.id) ?? UserID(bytes: [UInt8](repeating: 0, count: 16))
        alterIDs = user.alterId > 0 ? id.alterIDs(user.alterId) : []
        (security, options) = Self.wireSecurity(user.security)
        securityName = user.security
    }

    /// What a v2fly client puts on the wire for each `security` setting (§9.13): S|M|P for the AEAD
    /// ciphers, S|M for none, no options at all for zero (raw bytes). "auto" (and no setting) picks
    /// AES-GCM when the CPU accelerates it, else ChaCha20-Poly1305, as the reference does.
    static func wireSecurity(_ name: String?) -> (Security, RequestOptions) {
        let aead: RequestOptions = [.chunkStream, .chunkMasking, .globalPadding]
        switch name?.lowercased() {
        case "aes-128-gcm": return (.aes128GCM, aead)
        case "chacha20-poly1305": return (.chacha20Poly1305, aead)
        case "none": return (.none, [.chunkStream, .chunkMasking])
        case "zero": return (.none, [])
        default: return (CPUFeatures.acceleratesAESGCM ? .aes128GCM : .chacha20Poly1305, aead)
        }
    }

    /// A fresh request: random body key and IV, response byte V and 0-15 bytes of header padding,
    /// sealed with the AEAD header (alterId 0) or the legacy header (alterId > 0).
    func makeRequest(command: RequestCommand, destination: Destination, now: Int64) throws -> VMessClientRequest {
        let header = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16),
                                   responseAuth: SecureRandom.bytes(1)[0], options: options, security: security,
                                   command: command, port: destination.port,
                                   address: command == .mux ? nil : destination.address,
                                   padding: SecureRandom.bytes(Int.random(in: 0...15)))
        if let authID = alterIDs.randomElement() {
            // §7.1: the timestamp gets a jitter of [-30, +29] s and the auth hash uses a random alter
            // ID (never the primary); the command section is CFB under the primary id's cmdKey.
            let time = now + Int64.random(in: -30...29)
            return VMessClientRequest(header: header, wire: try LegacyHeader.seal(header, primary: id, authID: authID, time: time),
                                      legacy: true)
        }
        return VMessClientRequest(header: header, wire: try AEADHeader.seal(header, cmdKey: id.cmdKey, time: now),
                                  legacy: false)
    }
}
