/// The AEAD AuthID (vmess-protocol.md §5.2):
///
///     plain = BE64(unix seconds) ‖ 4 random ‖ BE32(CRC32(first 12))
///     EAuthID = AES-128-ECB(KDF16(cmdKey, "AES Auth ID Encryption"), plain)
public enum AuthID {
    public static func key(cmdKey: [UInt8]) -> [UInt8] { Array(KDF.derive(cmdKey, KDFLabel.authID)[0..<16]) }

    public static func plain(time: Int64, random: [UInt8]) -> [UInt8] {
        precondition(random.count == 4)
        var p = withUnsafeBytes(of: UInt64(bitPattern: time).bigEndian) { Array($0) } + random
        let crc = Checksum.crc32(p)
        p += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return p
    }

    public static func create(cmdKey: [UInt8], time: Int64, random: [UInt8] = SecureRandom.bytes(4)) throws -> [UInt8] {
        try AESBlock(key: key(cmdKey: cmdKey), encrypting: true).apply(plain(time: time, random: random))
    }

    public enum Check: Equatable {
        case badChecksum
        /// Decrypted fine; the timestamp it carries (may be out of the window).
        case time(Int64)
    }

    /// Decrypts `encrypted` (16 bytes at the pointer) with one user's decryptor and checks the CRC.
    @inline(__always)
    public static func check(_ encrypted: UnsafeRawPointer, decryptor: AESBlock) -> Check {
        var plain = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &plain) { p -> Check in
            decryptor.apply(encrypted, p.baseAddress!)
            let expected = UInt32(p[12]) << 24 | UInt32(p[13]) << 16 | UInt32(p[14]) << 8 | UInt32(p[15])
            guard Checksum.crc32(UnsafeRawBufferPointer(rebasing: p[0..<12])) == expected else { return .badChecksum }
            var t: UInt64 = 0
            for i in 0..<8 { t = t << 8 | UInt64(p[i]) }
            return .time(Int64(bitPattern: t))
        }
    }
}
