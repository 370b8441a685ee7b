/// The switch-account response command (vmess-protocol.md §8.5, V2Ray's dynamic port): it tells the
/// client to use another port and id (the `detour` inbound's) for the next connections, for
/// `validMinutes`.
///
///   data = BE32(FNV1a(body)) ‖ body
///   body = HostLen(1) ‖ Host ‖ BE16(Port) ‖ UUID(16) ‖ BE16(AlterIds) ‖ Level(1) ‖ ValidMinutes(1)
public struct SwitchAccountCommand: Equatable, Sendable {
    public static let code: UInt8 = 1

    /// Empty: the address the client is connected to (what V2Ray's servers send).
    public var host: String
    public var port: UInt16
    public var id: UserID
    public var alterIds: UInt16
    public var level: UInt8
    public var validMinutes: UInt8

    public init(host: String = "", port: UInt16, id: UserID, alterIds: UInt16, level: UInt8, validMinutes: UInt8) {
        self.host = host
        self.port = port
        self.id = id
        self.alterIds = alterIds
        self.level = level
        self.validMinutes = validMinutes
    }

    /// The longest host the command can carry: its data has a one-byte length in the response
    /// header, so checksum (4) + host length (1) + host + the fixed 22 bytes stay within 255.
    public static let maxHostBytes = 255 - 4 - 1 - 22

    /// The command data; the host is cut to `maxHostBytes` (longer, the header's one-byte command
    /// length could not say the data's size).
    public func encode() -> [UInt8] {
        let hostBytes = Array(host.utf8.prefix(Self.maxHostBytes))
        var body: [UInt8] = [UInt8(hostBytes.count)] + hostBytes
        body += [UInt8(port >> 8), UInt8(port & 0xFF)] + id.bytes
        body += [UInt8(alterIds >> 8), UInt8(alterIds & 0xFF), level, validMinutes]
        let sum = Checksum.fnv1a32(body)
        return [UInt8(sum >> 24), UInt8(sum >> 16 & 0xFF), UInt8(sum >> 8 & 0xFF), UInt8(sum & 0xFF)] + body
    }

    /// The command from its data, or nil when the checksum or a length does not hold, or the host
    /// is not UTF-8 text (a client then ignores it, as V2Ray's does: a host that is not text is no
    /// address to dial, and replacing its bytes would make up one the server never sent).
    public static func decode(_ data: some Collection<UInt8>) -> SwitchAccountCommand? {
        let d = Array(data)
        guard d.count >= 4 + 1 + 22 else { return nil }
        let sum = UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
        let body = d[4...]
        guard Checksum.fnv1a32(body) == sum else { return nil }
        let hostLength = Int(body[4])
        guard hostLength <= maxHostBytes, body.count == 1 + hostLength + 22 else { return nil }
        var i = 5 + hostLength
        guard let host = String(validating: body[5..<i], as: UTF8.self) else { return nil }
        let port = UInt16(body[i]) << 8 | UInt16(body[i + 1])
        i += 2
        let id = UserID(bytes: Array(body[i..<(i + 16)]))
        i += 16
        return SwitchAccountCommand(host: host, port: port, id: id, alterIds: UInt16(body[i]) << 8 | UInt16(body[i + 1]),
                                    level: body[i + 2], validMinutes: body[i + 3])
    }
}

extension UserID {
    /// The id a user has on the `detour` inbound named `tag`: derived from the user's own id, so every
    /// worker, every reload and every restart agrees on it without sharing state (V2Ray makes a random
    /// one per process, which several workers could not share). Shaped as a version-4 UUID.
    public func detour(tag: String) -> UserID {
        var bytes = Array(Digest.sha256(Array("vmessd detour id".utf8) + self.bytes + Array(tag.utf8))[0..<16])
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        return UserID(bytes: bytes)
    }
}
