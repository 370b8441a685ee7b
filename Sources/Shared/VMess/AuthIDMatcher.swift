import CShims

/// Which users an AEAD AuthID can belong to, in the order they must be tried (§5.4: the first user,
/// in table order, whose decryption has a valid checksum and a time within ±120 s wins).
///
/// The exact check stays the caller's (`AuthID.check` under the user's decryptor); this type only
/// narrows the users worth checking, so acceptance is the same as trying every user:
/// - With AES-NI, every user's decryption round keys sit in one array and one C loop decrypts the
///   block under all of them (AuthIDScan.c), yielding only users whose plaintext starts with a time
///   within `looseWindow` of now. Through EVP, one decryption per user costs ~110 ns; 10,000 users
///   made a handshake several times dearer than with one.
/// - The user last matched from the client's address is tried first (`recent`): a returning client
///   costs one decryption however many users there are.
public final class AuthIDMatcher {
    /// Wider than the ±120 s the check allows, so that a client whose clock is off by minutes or
    /// months is still found and reported as clock skew rather than as an unknown user.
    public static let looseWindow: UInt64 = 1 << 26  // about two years
    /// Bound of the address → user map; it is emptied when full (only the shortcut is lost).
    static let recentCapacity = 16_384

    private let count: Int
    /// count × 176 bytes, or nil without AES-NI (every user is then a candidate).
    private let roundKeys: [UInt8]?
    private var recent: [SourceKey: Int32] = [:]

    private let window: UInt64

    /// `accelerated` and `window` are for tests (both paths must find the same users).
    init(authKeys: [[UInt8]], accelerated: Bool = AuthIDMatcher.hasAESNI, window: UInt64 = AuthIDMatcher.looseWindow) {
        count = authKeys.count
        self.window = window
        guard accelerated else {
            roundKeys = nil
            return
        }
        var keys = [UInt8](repeating: 0, count: authKeys.count * Int(VMESSD_AES128_DECRYPTION_KEYS_SIZE))
        keys.withUnsafeMutableBufferPointer { out in
            for (i, key) in authKeys.enumerated() {
                precondition(key.count == 16)
                vmessd_aes128_decryption_keys(key, out.baseAddress! + i * Int(VMESSD_AES128_DECRYPTION_KEYS_SIZE))
            }
        }
        roundKeys = keys
    }

    public static let hasAESNI = vmessd_aesni_available() == 1

    /// Calls `body` with each candidate user index, the remembered one for `source` first, until it
    /// returns true (a match). Indices are in table order after that; none is repeated.
    func forEachCandidate(_ authID: UnsafeRawPointer, now: Int64, source: SourceKey?, _ body: (Int) -> Bool) {
        let first = source.flatMap { recent[$0] }.map(Int.init).flatMap { $0 < count ? $0 : nil }
        if let first, body(first) { return }
        guard let roundKeys else {
            for i in 0..<count where i != first {
                if body(i) { return }
            }
            return
        }
        var candidates = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        let capacity = 8
        var start = 0
        while start < count {
            let (found, last): (Int, Int) = roundKeys.withUnsafeBufferPointer { keys in
                withUnsafeMutableBytes(of: &candidates) { raw in
                    let out = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
                    let n = vmessd_authid_scan(authID, keys.baseAddress! + start * Int(VMESSD_AES128_DECRYPTION_KEYS_SIZE),
                                               count - start, now, window, out, capacity)
                    return (n, n > 0 ? Int(out[n - 1]) : -1)
                }
            }
            for k in 0..<found {
                let i = start + Int(withUnsafeBytes(of: &candidates) { $0.load(fromByteOffset: k * 4, as: UInt32.self) })
                if i != first, body(i) { return }
            }
            // A full buffer may have stopped the scan early: go on after its last candidate.
            guard found == capacity else { return }
            start += last + 1
        }
    }

    /// Remembers which user `source` authenticated as.
    func remember(_ source: SourceKey?, user: Int) {
        guard let source else { return }
        if recent.count >= Self.recentCapacity, recent[source] == nil { recent.removeAll(keepingCapacity: true) }
        recent[source] = Int32(truncatingIfNeeded: user)
    }
}

/// A client's IP address as a hashable key (IPv4 as its mapped IPv6 form).
public struct SourceKey: Hashable, Sendable {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The address as inet_ntop spells it (a mapped IPv4 address as its dotted quad).
    public var text: String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
        }
        if high == 0, low >> 32 == 0xFFFF { bytes = Array(bytes[12...]) }
        return ipAddressText(bytes) ?? "?"
    }

    /// 4 or 16 bytes; nil for anything else.
    public init?(address: some Collection<UInt8>) {
        var bytes = Array(address)
        if bytes.count == 4 { bytes = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + bytes }
        guard bytes.count == 16 else { return nil }
        high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }
}
