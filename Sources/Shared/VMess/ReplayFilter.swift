/// Rejects a second use of an AEAD AuthID (vmess-protocol.md §5.5): two exact generations rotated
/// every 120 s, so a value is remembered for 120-240 s, which covers the ±120 s acceptance window.
/// Keyed on the 16 *encrypted* AuthID bytes.
public protocol AuthIDReplayFilter: AnyObject {
    /// Returns true if `id` is new (and records it), false if it was seen before.
    func insert(_ id: AuthIDKey, now: Int64) -> Bool
}

/// 16 bytes as two words: hashable without allocation.
public struct AuthIDKey: Hashable, Sendable {
    public var hi: UInt64
    public var lo: UInt64
    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }
    public init(_ p: UnsafeRawPointer) {
        hi = p.loadUnaligned(as: UInt64.self)
        lo = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    }
    public init(_ bytes: [UInt8]) {
        precondition(bytes.count >= 16)
        self = bytes.withUnsafeBytes { AuthIDKey($0.baseAddress!) }
    }
}

/// The in-process filter. (With several workers the supervisor's shared-memory filter takes its
/// place so that a replay is caught whichever worker it reaches.)
public final class GenerationalReplayFilter: AuthIDReplayFilter {
    public static let generation: Int64 = 120
    private var current = Set<AuthIDKey>()
    private var previous = Set<AuthIDKey>()
    private var rotatedAt: Int64?
    /// Bound on memory: a flood of valid-looking AuthIDs cannot grow the sets without limit.
    private let capacity: Int

    public init(capacity: Int = 1_000_000) { self.capacity = capacity }

    public func insert(_ id: AuthIDKey, now: Int64) -> Bool {
        if let r = rotatedAt {
            if now - r >= 2 * Self.generation {
                previous.removeAll(keepingCapacity: true)
                current.removeAll(keepingCapacity: true)
                rotatedAt = now
            } else if now - r >= Self.generation {
                swap(&previous, &current)
                current.removeAll(keepingCapacity: true)
                rotatedAt = now
            }
        } else {
            rotatedAt = now
        }
        if current.contains(id) || previous.contains(id) { return false }
        // Full (a flood of fresh, valid AuthIDs from someone who knows a user id): rotate early
        // rather than refuse, so genuine users are never turned away. What is forgotten is the
        // oldest generation; a replay of one of those is still caught by the session history.
        if current.count >= capacity {
            swap(&previous, &current)
            current.removeAll(keepingCapacity: true)
            rotatedAt = now
            earlyRotations &+= 1
        }
        current.insert(id)
        return true
    }

    /// Rotations forced by a full generation (statistics).
    public private(set) var earlyRotations = 0
}

/// Duplicate (user, reqKey, reqIV) within 3 minutes (§5.5 "session history").
///
/// Two generations of at most `capacity` keys each, rotated every `lifetime` seconds, so a session is
/// remembered for 180-360 s. Bounded, and never full: a flood of fresh sessions rotates early (the
/// oldest generation is forgotten) instead of turning genuine users away.
public final class SessionHistory {
    public struct Key: Hashable {
        var user: Int
        var key: AuthIDKey
        var iv: AuthIDKey
    }
    public static let lifetime: Int64 = 180
    private var current = Set<Key>()
    private var previous = Set<Key>()
    private var rotatedAt: Int64?
    private let capacity: Int

    public init(capacity: Int = 1_000_000) { self.capacity = max(1, capacity) }

    /// true = new session recorded; false = duplicate.
    public func insert(user: Int, key: [UInt8], iv: [UInt8], now: Int64) -> Bool {
        if let r = rotatedAt {
            // Saturating: `now` is the server's clock, which may step either way.
            let age = now.subtractingReportingOverflow(r)
            if age.overflow || age.partialValue >= 2 * Self.lifetime || age.partialValue < 0 {
                previous.removeAll(keepingCapacity: true)
                current.removeAll(keepingCapacity: true)
                rotatedAt = now
            } else if age.partialValue >= Self.lifetime {
                rotate(now)
            }
        } else {
            rotatedAt = now
        }
        let k = Key(user: user, key: AuthIDKey(key), iv: AuthIDKey(iv))
        if current.contains(k) || previous.contains(k) { return false }
        if current.count >= capacity { rotate(now) }
        current.insert(k)
        return true
    }

    private func rotate(_ now: Int64) {
        swap(&previous, &current)
        current.removeAll(keepingCapacity: true)
        rotatedAt = now
    }

    /// Keys remembered (statistics, tests).
    public var count: Int { current.count + previous.count }
}
