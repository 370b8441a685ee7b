// The messages a supervisor and one of its workers exchange over the worker's control socket
// (AF_UNIX SOCK_SEQPACKET: one send is one message, boundaries kept, never merged or split).
// nginx's ngx_channel_t is the model: a small fixed message, and the descriptors it carries travel
// beside it as SCM_RIGHTS ancillary data.
//
//   0        1        2        3        4                 6
//   +--------+--------+--------+--------+--------+--------+----------------------
//   | magic  | version|  type  |  0     | payload length  | payload (big-endian)
//   | 0x56   |   1    |        |        |   (UInt16 BE)   |
//   +--------+--------+--------+--------+--------+--------+----------------------
//
//   type  direction            payload                                      descriptors
//   1     supervisor → worker  attach: listeners u16, shared memory u8       [shm?] + listeners
//   2     supervisor → worker  heartbeat: sequence u64                       -
//   3     supervisor → worker  drain: timeout ms u32                         -
//   4     supervisor → worker  stop                                          -
//   5     supervisor → worker  accept (start accepting connections)          -
//   6     supervisor → worker  reopen logs (logrotate: SIGUSR1, RestartLogger) -
//   7     supervisor → worker  add user: tag, email (u8 length + UTF-8 each),  -
//                              id (36-byte UUID text), alterId u16, level u32
//   8     supervisor → worker  remove user: tag, email (as above),             -
//                              disconnect u8 (1: end the user's connections now)
//   64    worker → supervisor  ready: pid u32                                -
//   65    worker → supervisor  heartbeat reply: sequence u64, connections u32 -
//   66    worker → supervisor  draining: connections u32                     -
//   67    worker → supervisor  failed: reason (UTF-8, up to 1024 bytes)      -
//
// Pure: bytes in, values out. The I/O lives in Posix (send/receive with descriptors) and in the two
// process shells.

public enum ControlMessage: Equatable, Sendable {
    /// The first message a worker gets: its descriptors. `sharedMemory` says whether the first one is
    /// the shared-memory memfd; the listening sockets follow in the order of the bootstrap's
    /// `listeners`.
    case attach(listeners: Int, sharedMemory: Bool)
    /// Liveness probe. The worker answers from its event loop, so a wedged loop goes unanswered.
    case heartbeat(sequence: UInt64)
    /// Stop accepting, finish open connections, exit when none is left or after `timeoutMilliseconds`.
    case drain(timeoutMilliseconds: UInt32)
    /// Exit now.
    case stop
    /// Start accepting. A worker serves its listeners paused until told: during a reload the new
    /// generation starts accepting only once the old one has stopped, so no two processes ever wait
    /// on one socket at the same time (no thundering herd, and every connection after READY=1 meets
    /// the new config).
    case accept
    /// Reopen the access and error log files (they were renamed by logrotate).
    case reopenLogs
    /// A user added at runtime to the vmess inbounds tagged `inbound` (RuntimeUsers).
    case addUser(inbound: String, user: VMessUser)
    /// A user removed at runtime; `disconnect`: end its open connections now, else let them finish.
    case removeUser(inbound: String, email: String, disconnect: Bool)
    /// The worker serves every listener it was given.
    case ready(pid: Int32)
    case heartbeatReply(sequence: UInt64, connections: UInt32)
    /// Acknowledges a drain: the worker has stopped accepting.
    case draining(connections: UInt32)
    /// The worker cannot serve (bad descriptors, a certificate it cannot load, …); it exits after this.
    case failed(reason: String)

    public static let magic: UInt8 = 0x56
    public static let version: UInt8 = 1
    public static let headerSize = 6
    /// Every message fits one receive buffer of this size.
    public static let maximumSize = 2048
    public static let maximumReasonBytes = 1024
    /// Tags and emails in user messages (RuntimeUsers refuses longer ones before they get here).
    public static let maximumNameBytes = 255

    enum Kind: UInt8 {
        case attach = 1, heartbeat = 2, drain = 3, stop = 4, accept = 5, reopenLogs = 6, addUser = 7, removeUser = 8
        case ready = 64, heartbeatReply = 65, draining = 66, failed = 67
    }

    /// How many descriptors travel with this message.
    public var descriptorCount: Int {
        switch self {
        case .attach(let listeners, let sharedMemory): listeners + (sharedMemory ? 1 : 0)
        default: 0
        }
    }

    public func encoded() -> [UInt8] {
        var payload: [UInt8] = []
        let kind: Kind
        switch self {
        case .attach(let listeners, let sharedMemory):
            kind = .attach
            precondition((0...Int(UInt16.max)).contains(listeners))
            payload.appendBigEndian(UInt16(listeners))
            payload.append(sharedMemory ? 1 : 0)
        case .heartbeat(let sequence):
            kind = .heartbeat
            payload.appendBigEndian(sequence)
        case .drain(let timeout):
            kind = .drain
            payload.appendBigEndian(timeout)
        case .stop:
            kind = .stop
        case .accept:
            kind = .accept
        case .reopenLogs:
            kind = .reopenLogs
        case .addUser(let inbound, let user):
            kind = .addUser
            payload.appendName(inbound)
            payload.appendName(user.email ?? "")
            precondition(user.id.utf8.count == 36, "user ids travel as canonical UUID text")
            payload += Array(user.id.utf8)
            payload.appendBigEndian(UInt16(clamping: user.alterId))
            payload.appendBigEndian(UInt32(clamping: user.level))
        case .removeUser(let inbound, let email, let disconnect):
            kind = .removeUser
            payload.appendName(inbound)
            payload.appendName(email)
            payload.append(disconnect ? 1 : 0)
        case .ready(let pid):
            kind = .ready
            payload.appendBigEndian(UInt32(bitPattern: pid))
        case .heartbeatReply(let sequence, let connections):
            kind = .heartbeatReply
            payload.appendBigEndian(sequence)
            payload.appendBigEndian(connections)
        case .draining(let connections):
            kind = .draining
            payload.appendBigEndian(connections)
        case .failed(let reason):
            kind = .failed
            // Cut at a character boundary so the receiver always gets valid UTF-8.
            var bytes = Array(reason.utf8)
            if bytes.count > Self.maximumReasonBytes {
                var cut = Self.maximumReasonBytes
                while cut > 0 && (bytes[cut] & 0xC0) == 0x80 { cut -= 1 }
                bytes = Array(bytes[0..<cut])
            }
            payload = bytes
        }
        var out: [UInt8] = [Self.magic, Self.version, kind.rawValue, 0]
        out.appendBigEndian(UInt16(payload.count))
        return out + payload
    }

    public static func decode(_ bytes: [UInt8]) throws -> ControlMessage {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> ControlMessage {
        guard bytes.count >= headerSize else { throw ControlMessageError.tooShort(bytes.count) }
        guard bytes[0] == magic else { throw ControlMessageError.badMagic(bytes[0]) }
        guard bytes[1] == version else { throw ControlMessageError.unsupportedVersion(bytes[1]) }
        guard let kind = Kind(rawValue: bytes[2]) else { throw ControlMessageError.unknownType(bytes[2]) }
        let length = Int(bytes[4]) << 8 | Int(bytes[5])
        guard bytes.count == headerSize + length else {
            throw ControlMessageError.lengthMismatch(declared: length, actual: bytes.count - headerSize)
        }
        var reader = PayloadReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
        let message: ControlMessage
        switch kind {
        case .attach:
            let listeners = Int(try reader.read(UInt16.self))
            let shm = try reader.read(UInt8.self)
            guard shm <= 1 else { throw ControlMessageError.badField("attach.sharedMemory", Int(shm)) }
            message = .attach(listeners: listeners, sharedMemory: shm == 1)
        case .heartbeat:
            message = .heartbeat(sequence: try reader.read(UInt64.self))
        case .drain:
            message = .drain(timeoutMilliseconds: try reader.read(UInt32.self))
        case .stop:
            message = .stop
        case .accept:
            message = .accept
        case .reopenLogs:
            message = .reopenLogs
        case .addUser:
            let inbound = try reader.readName()
            let email = try reader.readName()
            let id = String(decoding: try reader.take(36), as: UTF8.self)
            guard UserID(text: id) != nil else { throw ControlMessageError.badField("addUser.id", 0) }
            let alterId = Int(try reader.read(UInt16.self))
            let level = Int(try reader.read(UInt32.self))
            message = .addUser(inbound: inbound, user: VMessUser(id: id, alterId: alterId, level: level, email: email.isEmpty ? nil : email))
        case .removeUser:
            let inbound = try reader.readName()
            let email = try reader.readName()
            let flag = try reader.read(UInt8.self)
            guard flag <= 1 else { throw ControlMessageError.badField("removeUser.disconnect", Int(flag)) }
            message = .removeUser(inbound: inbound, email: email, disconnect: flag == 1)
        case .ready:
            message = .ready(pid: Int32(bitPattern: try reader.read(UInt32.self)))
        case .heartbeatReply:
            message = .heartbeatReply(sequence: try reader.read(UInt64.self), connections: try reader.read(UInt32.self))
        case .draining:
            message = .draining(connections: try reader.read(UInt32.self))
        case .failed:
            guard length <= maximumReasonBytes else { throw ControlMessageError.badField("failed.reason", length) }
            message = .failed(reason: String(decoding: reader.rest(), as: UTF8.self))
        }
        guard reader.isAtEnd else { throw ControlMessageError.lengthMismatch(declared: length, actual: length - reader.remaining) }
        return message
    }
}

public enum ControlMessageError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case badMagic(UInt8)
    case unsupportedVersion(UInt8)
    case unknownType(UInt8)
    case lengthMismatch(declared: Int, actual: Int)
    case badField(String, Int)
    /// The message said it carries `expected` descriptors, `received` came.
    case descriptorCount(expected: Int, received: Int)

    public var description: String {
        switch self {
        case .tooShort(let n): "control message of \(n) bytes is shorter than its header"
        case .badMagic(let b): "control message with bad magic byte \(b)"
        case .unsupportedVersion(let v): "control message version \(v) is not supported"
        case .unknownType(let t): "control message of unknown type \(t)"
        case .lengthMismatch(let declared, let actual): "control message payload is \(actual) bytes, header says \(declared)"
        case .badField(let name, let value): "control message field \(name) has invalid value \(value)"
        case .descriptorCount(let expected, let received): "control message carries \(received) descriptors, expected \(expected)"
        }
    }
}

private struct PayloadReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw ControlMessageError.tooShort(bytes.count) }
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(bytes[offset + i]) }
        offset += size
        return value
    }

    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard remaining >= count else { throw ControlMessageError.tooShort(bytes.count) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// u8 length, then that many UTF-8 bytes.
    mutating func readName() throws -> String {
        let length = Int(try read(UInt8.self))
        return String(decoding: try take(length), as: UTF8.self)
    }

    mutating func rest() -> UnsafeRawBufferPointer {
        defer { offset = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset...])
    }
}

extension Array where Element == UInt8 {
    /// u8 length + UTF-8; the sender keeps names within `maximumNameBytes`.
    fileprivate mutating func appendName(_ name: String) {
        let bytes = Array(name.utf8)
        precondition(bytes.count <= ControlMessage.maximumNameBytes, "names are bounded before they are sent")
        append(UInt8(bytes.count))
        self += bytes
    }

    fileprivate mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        for i in (0..<size).reversed() { append(UInt8(truncatingIfNeeded: value >> (i * 8))) }
    }
}
