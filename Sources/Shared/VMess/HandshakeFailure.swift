/// Why a server refused a handshake, and what it does about it (vmess-protocol.md §11.2).
public enum HandshakeFailure: Equatable, Sendable, CustomStringConvertible {
    case unknownUser
    /// An AuthID decrypted for a user but its time was outside ±120 s (seconds of skew, signed).
    case clockSkew(Int64)
    case replay
    /// GCM open of the header length or command section failed.
    case headerAuthentication
    case badLength(Int)
    case badChecksum
    case invalidAddress
    case unsupportedCommand(UInt8)
    case unsupportedSecurity(UInt8)
    case insecureSecurityDisallowed(UInt8)
    case duplicateSession
    case legacyTainted

    public var description: String {
        switch self {
        case .unknownUser: "unknown user"
        case .clockSkew(let s): "clock skew of \(s) s (limit 120 s)"
        case .replay: "replayed AuthID"
        case .headerAuthentication: "header authentication failed"
        case .badLength(let l): "bad header length \(l)"
        case .badChecksum: "bad command checksum"
        case .invalidAddress: "invalid remote address"
        case .unsupportedCommand(let c): "unsupported command \(c)"
        case .unsupportedSecurity(let s): "unsupported security \(s)"
        case .insecureSecurityDisallowed(let s): "insecure security \(s) disallowed by disableInsecureEncryption"
        case .duplicateSession: "duplicate session key/iv"
        case .legacyTainted: "tainted legacy auth"
        }
    }

    /// A short stable name for counters.
    public var counterName: String {
        switch self {
        case .unknownUser: "unknown_user"
        case .clockSkew: "clock_skew"
        case .replay: "replay"
        case .headerAuthentication: "header_auth"
        case .badLength: "bad_length"
        case .badChecksum: "bad_checksum"
        case .invalidAddress: "invalid_address"
        case .unsupportedCommand: "unsupported_command"
        case .unsupportedSecurity: "unsupported_security"
        case .insecureSecurityDisallowed: "insecure_disallowed"
        case .duplicateSession: "duplicate_session"
        case .legacyTainted: "legacy_tainted"
        }
    }
}

/// What the connection does after a failure: drain keeps reading and discarding until `total` bytes
/// have been consumed (counting the handshake so far), then closes, so that a prober sees the same as
/// against the reference server. `close` drops the connection without answering.
public enum HandshakeAction: Equatable, Sendable {
    case drain(total: Int)
    case close
}
