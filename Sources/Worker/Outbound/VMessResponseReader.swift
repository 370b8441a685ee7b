import NIOCore
import Shared

/// Reads the response header in front of the response body (vmess-protocol.md §8), incrementally:
///
///     AEAD:   GCM(BE16(n)) 18 | GCM(V opt cmd cmdLen cmdData) n+16 | body …
///     legacy: CFB(respKey, respIV)( V opt cmd cmdLen cmdData )       | body … (CFB continues for a LEGACY body)
///
/// §8.6: V must echo the request's V, otherwise the connection is not ours and is closed; a
/// switch-account command (dynamic port) is kept in `switchAccount`, anything else in the command
/// slot (or a bad checksum) is ignored, as V2Ray's client does. `feed` consumes header bytes only.
struct VMessResponseReader {
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// The AEAD length or header did not open: wrong server, wrong user, or tampering.
        case authenticationFailed
        case responseAuthMismatch(expected: UInt8, got: UInt8)
        case badLength(Int)

        var description: String {
            switch self {
            case .authenticationFailed: "response header failed authentication"
            case .responseAuthMismatch(let e, let g): "response header V is \(g), expected \(e)"
            case .badLength(let n): "response header length \(n)"
            }
        }
    }

    private enum State {
        case aeadLength
        case aeadHeader(length: Int)
        case legacyFixed
        case legacyCommand(code: UInt8, length: Int)
        case done
    }

    private let expected: UInt8
    private let keys: ResponseHeader.BodyKeys
    private var state: State
    /// Legacy only: the response CFB stream, which a LEGACY response body continues (§8.4).
    private(set) var legacyStream: AESCFBStream?
    /// The server's switch-account command, if its header carried one.
    private(set) var switchAccount: SwitchAccountCommand?

    /// The plain header is V ‖ option ‖ command ‖ cmdLen ‖ ≤ 255 bytes: anything longer is not VMess.
    static let maximumLength = 4 + 255

    init(request: VMessClientRequest) throws {
        expected = request.header.responseAuth
        keys = request.responseKeys
        if request.legacy {
            state = .legacyFixed
            legacyStream = try AESCFBStream(key: keys.key, iv: keys.iv, encrypting: false)
        } else {
            state = .aeadLength
        }
    }

    var isDone: Bool { if case .done = state { true } else { false } }

    /// Consumes as much of the header as `buffer` holds. Returns true once the header is complete;
    /// false means more bytes are needed (`buffer` then still holds the unconsumed part, which the
    /// caller keeps and feeds again with what arrives next).
    mutating func feed(_ buffer: inout ByteBuffer) throws(Failure) -> Bool {
        while true {
            switch state {
            case .done:
                return true
            case .aeadLength:
                guard let sealed = buffer.readBytes(length: 18) else { return false }
                guard let n = ResponseHeader.openAEADLength(sealed, keys: keys) else { throw .authenticationFailed }
                guard (4...Self.maximumLength).contains(n) else { throw .badLength(n) }
                state = .aeadHeader(length: n)
            case .aeadHeader(let n):
                guard let sealed = buffer.readBytes(length: n + 16) else { return false }
                guard let plain = ResponseHeader.openAEADHeader(sealed, keys: keys) else { throw .authenticationFailed }
                guard plain[0] == expected else { throw .responseAuthMismatch(expected: expected, got: plain[0]) }
                let length = Int(plain[3])
                if plain[2] == SwitchAccountCommand.code, plain.count >= 4 + length {
                    switchAccount = SwitchAccountCommand.decode(plain[4..<(4 + length)])
                }
                state = .done
            case .legacyFixed:
                guard let sealed = buffer.readBytes(length: 4), let cfb = legacyStream else { return false }
                let plain = cfb.apply(sealed)
                guard plain[0] == expected else { throw .responseAuthMismatch(expected: expected, got: plain[0]) }
                state = plain[3] == 0 ? .done : .legacyCommand(code: plain[2], length: Int(plain[3]))
            case .legacyCommand(let code, let n):
                // Only decrypted once complete, so the CFB stream advances exactly over the header.
                guard let sealed = buffer.readBytes(length: n), let cfb = legacyStream else { return false }
                let data = cfb.apply(sealed)
                if code == SwitchAccountCommand.code { switchAccount = SwitchAccountCommand.decode(data) }
                state = .done
            }
        }
    }
}
