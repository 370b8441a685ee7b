/// A VMess identity: the 16 UUID bytes and what is derived from them (vmess-protocol.md §2).
public struct UserID: Equatable, Hashable, Sendable {
    public let bytes: [UInt8]
    /// MD5(id ‖ "c48619fe-8f02-49e0-b9e9-edf763e17e21"): the root secret of the AEAD header and the CFB key of the legacy header.
    public let cmdKey: [UInt8]

    static let cmdKeySalt = Array("c48619fe-8f02-49e0-b9e9-edf763e17e21".utf8)
    static let alterSalt = Array("16167dc8-16b6-4e6d-b8bb-65dd68113a81".utf8)
    static let alterCollisionSalt = Array("533eff8a-4113-4b10-b5ce-0f5d76b98cd2".utf8)

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        self.bytes = bytes
        self.cmdKey = Digest.md5(bytes + UserID.cmdKeySalt)
    }

    /// Parses 32 hex digits in 8-4-4-4-12 groups, each group optionally preceded by one '-'.
    public init?(text: String) {
        let groups = [8, 4, 4, 4, 12]
        var chars = Array(text.utf8)[...]
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for g in groups {
            if chars.first == UInt8(ascii: "-") { chars = chars.dropFirst() }
            guard chars.count >= g else { return nil }
            var i = chars.startIndex
            for _ in 0..<(g / 2) {
                guard let hi = UserID.hex(chars[i]), let lo = UserID.hex(chars[i + 1]) else { return nil }
                out.append(hi << 4 | lo)
                i += 2
            }
            chars = chars[i...]
        }
        guard chars.isEmpty else { return nil }
        self.init(bytes: out)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Lower-case 8-4-4-4-12 text.
    public var text: String { Self.hex(bytes[...], dashesBefore: [4, 6, 8, 10]) }

    /// The first 8 hex digits, for logs and counters of users without an email (never log a full id).
    public var shortText: String { Self.hex(bytes[..<4], dashesBefore: []) }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func hex(_ part: ArraySlice<UInt8>, dashesBefore: Set<Int>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(part.count * 2 + dashesBefore.count)
        for (i, b) in part.enumerated() {
            if dashesBefore.contains(i) { out.append(UInt8(ascii: "-")) }
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The legacy alter IDs, in chain order (§2.3). Only used as HMAC keys for the legacy auth value.
    public func alterIDs(_ count: Int) -> [[UInt8]] {
        var result: [[UInt8]] = []
        result.reserveCapacity(count)
        var prev = bytes
        for _ in 0..<count {
            // MD5 state continued across digests: digest(prev ‖ salt ‖ collisionSalt*k).
            var material = prev + UserID.alterSalt
            var cand = Digest.md5(material)
            while cand == prev {
                material += UserID.alterCollisionSalt
                cand = Digest.md5(material)
            }
            result.append(cand)
            prev = cand
        }
        return result
    }
}
