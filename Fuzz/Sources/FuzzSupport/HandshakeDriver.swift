import NIOCore
@testable import Shared

/// What both request-header targets share: the known users, the wire builders that get the fuzzer's
/// bytes past the parts it cannot forge (AuthID, AEAD tags, the legacy HMAC), and a driver that feeds
/// a ServerHandshake the way VMessServerHandler does and, once a header is accepted, hands the rest
/// to the body decoder the header selects.
public enum HandshakeDriver {
    /// The §14 vector user and a second one, so matching walks more than one table entry.
    public static let alice = UserID(text: "b831381d-6324-4d53-ad4f-8cda48b30811")!
    public static let bob = UserID(text: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f")!
    /// The §14 vector time; every run uses the same clock so that a crash replays.
    public static let now: Int64 = 1_700_000_000

    /// The §14 vector request (aes-128-gcm, options 0x0D, www.example.com:443, padding eeeeeeee).
    public static func vectorRequest(security: Security = .aes128GCM, options: UInt8 = 0x0D,
                                     command: RequestCommand = .tcp) -> RequestHeader {
        RequestHeader(requestIV: (0..<16).map { 0x20 + $0 }, requestKey: (0..<16).map { 0x40 + $0 }, responseAuth: 0x5A,
                      options: RequestOptions(rawValue: options), security: security, command: command, port: 443,
                      address: command == .mux ? nil : .domain("www.example.com"), padding: [0xEE, 0xEE, 0xEE, 0xEE])
    }

    /// Rewrites the FNV-1a checksum of a command section in place when its length is decidable, so
    /// that the fuzzer reaches the field parsing behind the checksum instead of stopping at it.
    public static func fixChecksum(_ plain: inout [UInt8]) {
        guard case .total(let n) = RequestHeader.probeLength(plain[...]), n >= 4, n <= plain.count else { return }
        let f = Checksum.fnv1a32(plain[0..<(n - 4)])
        plain[n - 4] = UInt8(f >> 24)
        plain[n - 3] = UInt8(f >> 16 & 0xFF)
        plain[n - 2] = UInt8(f >> 8 & 0xFF)
        plain[n - 1] = UInt8(f & 0xFF)
    }

    /// Splits fuzzed plaintext into the command section (as long as its own fields say, when that
    /// is decidable) and the body bytes that follow it on the wire.
    public static func splitCommand(_ plain: [UInt8]) -> (command: [UInt8], body: [UInt8]) {
        guard case .total(let n) = RequestHeader.probeLength(plain[...]), n <= plain.count else { return (plain, []) }
        return (Array(plain[..<n]), Array(plain[n...]))
    }

    /// A complete AEAD header whose command section is `plain` exactly as given (any length, any
    /// content): AuthID, sealed length, nonce, sealed command.
    public static func sealAEAD(_ plain: [UInt8], cmdKey: [UInt8], time: Int64, declaredLength: Int? = nil) -> [UInt8] {
        let (eAuthID, keys) = sealingKeys(cmdKey: cmdKey, time: time)
        let length = UInt16(truncatingIfNeeded: declaredLength ?? plain.count)
        let encLen = try! AEADCipher(.aes128GCM, key: keys.lengthKey, encrypting: true)
            .seal(nonce: keys.lengthNonce, plaintext: [UInt8(length >> 8), UInt8(length & 0xFF)], aad: eAuthID)
        let encCmd = try! AEADCipher(.aes128GCM, key: keys.payloadKey, encrypting: true)
            .seal(nonce: keys.payloadNonce, plaintext: plain, aad: eAuthID)
        return eAuthID + encLen + connectionNonce + encCmd
    }

    static let connectionNonce: [UInt8] = (0..<8).map { 0xA0 + $0 }
    private struct SealingKey: Hashable { var cmdKey: [UInt8], time: Int64 }
    nonisolated(unsafe) private static var sealingCache: [SealingKey: ([UInt8], AEADHeader.HeaderKeys)] = [:]
    /// The AuthID and header keys for (user, time), derived once: the harness's own sealing would
    /// otherwise cost as many KDF rounds per execution as the parser it feeds.
    static func sealingKeys(cmdKey: [UInt8], time: Int64) -> ([UInt8], AEADHeader.HeaderKeys) {
        if let hit = sealingCache[SealingKey(cmdKey: cmdKey, time: time)] { return hit }
        let eAuthID = authID(cmdKey: cmdKey, time: time)
        let keys = AEADHeader.HeaderKeys(cmdKey: cmdKey, eAuthID: eAuthID, connectionNonce: connectionNonce)
        sealingCache[SealingKey(cmdKey: cmdKey, time: time)] = (eAuthID, keys)
        return (eAuthID, keys)
    }

    /// A valid AuthID for (user, time) with a fixed random part, so that inputs replay.
    public static func authID(cmdKey: [UInt8], time: Int64) -> [UInt8] {
        if let hit = sealingCache[SealingKey(cmdKey: cmdKey, time: time)] { return hit.0 }
        return try! AuthID.create(cmdKey: cmdKey, time: time, random: [1, 2, 3, 4])
    }

    /// A legacy header: the HMAC-MD5 auth of `authID` at `time`, then `plain` under AES-128-CFB.
    public static func sealLegacy(_ plain: [UInt8], primary: UserID, authID: [UInt8], time: Int64) -> [UInt8] {
        let cfb = try! AESCFBStream(key: primary.cmdKey, iv: LegacyHeader.iv(time: time), encrypting: true)
        return LegacyHeader.auth(id: authID, time: time) + cfb.apply(plain)
    }

    /// Feeds `wire` in the given reads until the handshake decides; on acceptance the bytes behind
    /// the header go through the request body decoder (and the response parameters are derived).
    public static func run(_ wire: [UInt8], pieces selector: UInt8, users: UserTable, disableInsecure: Bool) {
        var hs = ServerHandshake(users: users, replay: GenerationalReplayFilter(capacity: 16),
                                 sessions: SessionHistory(capacity: 16), disableInsecure: disableInsecure)
        var buffer = ByteBuffer()
        var accepted: ServerHandshake.Accepted?
        feeding: for piece in Pieces.split(wire, selector: selector) {
            buffer.writeBytes(piece)
            switch hs.feed(&buffer, now: now) {
            case .needMore: continue
            case .rejected: return
            case .accepted(let a):
                accepted = a
                break feeding
            }
        }
        guard let accepted else { return }
        precondition(accepted.consumed <= wire.count, "consumed more than was sent")
        let header = accepted.header
        _ = ResponseHeader.bodyKeys(request: header, legacy: accepted.legacy)
        guard let parameters = try? BodyParameters.request(header),
              let decoder = try? BodyDecoder(parameters) else { return }
        var body = ByteBuffer(bytes: wire[accepted.consumed...])
        _ = try? decoder.decode(&body) { _ in }
    }
}
