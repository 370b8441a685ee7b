/// The legacy (MD5) request header for users with alterId > 0 (vmess-protocol.md §7):
///
///     +----------------------------+-----------------------------------------------+
///     | HMAC-MD5(id, BE64(ts)) 16  | AES-128-CFB(cmdKey, MD5(ts×4)) command section |
///     +----------------------------+-----------------------------------------------+
public enum LegacyHeader {
    public static func auth(id: [UInt8], time: Int64) -> [UInt8] {
        Digest.hmacMD5(key: id, timeBytes(time))
    }

    public static func iv(time: Int64) -> [UInt8] {
        let t = timeBytes(time)
        return Digest.md5(t + t + t + t)
    }

    static func timeBytes(_ time: Int64) -> [UInt8] {
        withUnsafeBytes(of: UInt64(bitPattern: time).bigEndian) { Array($0) }
    }

    /// Client side. `authID` is the id used for the auth hash (an alter id when alterId > 0, §7.1);
    /// the command section is always encrypted with the primary id's cmdKey.
    public static func seal(_ request: RequestHeader, primary: UserID, authID: [UInt8], time: Int64) throws -> [UInt8] {
        let cfb = try AESCFBStream(key: primary.cmdKey, iv: iv(time: time), encrypting: true)
        return auth(id: authID, time: time) + cfb.apply(request.encodeCommandSection())
    }
}
