import NIOCore

/// The server side of a VMess request header as a pure state machine (vmess-protocol.md §5.4, §7.2,
/// §11.2): feed it received bytes and the clock; it answers need-more, accepted, or rejected with the
/// anti-probing action. All the policy about what gets a drain and what gets a close lives here.
public struct ServerHandshake {
    public struct Accepted {
        public let header: RequestHeader
        public let user: UserTable.Entry
        /// Legacy (MD5) header: response keys are MD5-derived and the response is CFB.
        public let legacy: Bool
        /// Bytes of the connection consumed by the header.
        public let consumed: Int
        /// AEAD: the AuthID's time minus the server's (seconds, within ±120); nil for legacy headers.
        public let skew: Int64?
    }

    public enum Outcome {
        case needMore
        case accepted(Accepted)
        case rejected(HandshakeFailure, HandshakeAction)
    }

    private enum State {
        case authID
        case aead(entry: Int, eAuthID: [UInt8])
        case aeadCommand(entry: Int, eAuthID: [UInt8], nonce: [UInt8], length: Int)
        case legacy(entry: Int, auth: AuthIDKey, cfb: AESCFBStream, plain: [UInt8])
        case done
    }

    private let users: UserTable
    private let replay: AuthIDReplayFilter
    private let sessions: SessionHistory
    private let disableInsecure: Bool
    private let source: SourceKey?
    private var state: State = .authID
    private var consumed = 0
    /// The matched AuthID's skew, reported with the acceptance (the skew histogram).
    private var matchedSkew: Int64?

    /// Largest command section a client can send: 38 fixed + port/addr (2+1+1+255) + 15 padding + 4.
    static let maxCommandLength = 38 + 2 + 1 + 1 + 255 + 15 + 4

    /// `source`: the client's address, so that the user it authenticated as last is tried first.
    public init(users: UserTable, replay: AuthIDReplayFilter, sessions: SessionHistory, disableInsecure: Bool,
                source: SourceKey? = nil) {
        self.source = source
        self.users = users
        self.replay = replay
        self.sessions = sessions
        self.disableInsecure = disableInsecure
    }

    private mutating func reject(_ f: HandshakeFailure, drain: Bool) -> Outcome {
        state = .done
        // Drawn here, once, rather than at init: a handshake rejects at most once, and an accepted
        // one (and the handler's second init once the client's address is known) then draws nothing.
        return .rejected(f, drain ? .drain(total: users.drainSize()) : .close)
    }

    /// Consumes header bytes from `buffer` (never body bytes) and reports progress.
    public mutating func feed(_ buffer: inout ByteBuffer, now: Int64) -> Outcome {
        while true {
            switch state {
            case .done:
                return .needMore
            case .authID:
                guard let a = buffer.readBytes(length: 16) else { return .needMore }
                consumed += 16
                var skew: Int64? = nil
                var matched: Int? = nil
                var accepted: Int64? = nil
                a.withUnsafeBytes { p in
                    users.authMatcher.forEachCandidate(p.baseAddress!, now: now, source: source) { i in
                        let e = users.entries[i]
                        guard case .time(let t) = AuthID.check(p.baseAddress!, decryptor: e.authDecryptor) else { return false }
                        // `t` is whatever the client put there (Int64.min included): the skew is
                        // computed saturating, never with trapping arithmetic.
                        let d = Self.skew(t, now)
                        if t < 0 || d > 120 || d < -120 {
                            // v2fly moves on to the next user (§5.4 step 3). A time beyond the matcher's
                            // loose window (years) is no clock, just bytes: reported as an unknown user,
                            // the same whether or not the AES-NI scan (which never yields it) ran.
                            if d.magnitude <= AuthIDMatcher.looseWindow { skew = d }
                            return false
                        }
                        matched = e.index
                        accepted = d
                        return true
                    }
                }
                if let m = matched {
                    matchedSkew = accepted
                    users.authMatcher.remember(source, user: m)
                    // Replays are never retried as legacy (§5.4 step 4).
                    guard replay.insert(AuthIDKey(a), now: now) else { return reject(.replay, drain: true) }
                    state = .aead(entry: m, eAuthID: a)
                    continue
                }
                if let hit = users.legacyLookup(AuthIDKey(a), now: now) {
                    let e = users.entries[hit.entry]
                    guard let cfb = try? AESCFBStream(key: e.id.cmdKey, iv: LegacyHeader.iv(time: hit.time), encrypting: false)
                    else { return reject(.headerAuthentication, drain: true) }
                    state = .legacy(entry: hit.entry, auth: AuthIDKey(a), cfb: cfb, plain: [])
                    continue
                }
                return reject(skew.map { .clockSkew($0) } ?? .unknownUser, drain: true)

            case .aead(let entry, let eAuthID):
                guard buffer.readableBytes >= 26 else { return .needMore }
                let encLen = buffer.readBytes(length: 18)!
                let nonce = buffer.readBytes(length: 8)!
                consumed += 26
                let cmdKey = users.entries[entry].id.cmdKey
                guard let l = AEADHeader.openLength(cmdKey: cmdKey, eAuthID: eAuthID, connectionNonce: nonce, sealed: encLen)
                else { return reject(.headerAuthentication, drain: true) }
                guard l >= 38 + 4, l <= Self.maxCommandLength else { return reject(.badLength(l), drain: true) }
                state = .aeadCommand(entry: entry, eAuthID: eAuthID, nonce: nonce, length: l)

            case .aeadCommand(let entry, let eAuthID, let nonce, let length):
                guard let sealed = buffer.readBytes(length: length + 16) else { return .needMore }
                consumed += length + 16
                let e = users.entries[entry]
                guard let plain = AEADHeader.openCommand(cmdKey: e.id.cmdKey, eAuthID: eAuthID, connectionNonce: nonce, sealed: sealed)
                else { return reject(.headerAuthentication, drain: true) }
                // From here on AEAD failures close without draining (§5.4 step 7).
                return finish(plain[...], entry: e, legacy: nil, now: now)

            case .legacy(let entry, let auth, let cfb, var plain):
                // No length field: decrypt what is there and ask the section how long it is.
                let want: Int
                switch RequestHeader.probeLength(plain[...]) {
                case .total(let n): want = n
                case .needAtLeast(let n): want = n
                case .invalid(let f):
                    users.taint(auth)
                    return reject(Self.failure(f), drain: false)
                }
                if plain.count >= want {
                    return finish(plain[...], entry: users.entries[entry], legacy: auth, now: now)
                }
                let take = min(want - plain.count, buffer.readableBytes)
                guard take > 0, var chunk = buffer.readBytes(length: take) else {
                    state = .legacy(entry: entry, auth: auth, cfb: cfb, plain: plain)
                    return .needMore
                }
                consumed += take
                chunk.withUnsafeMutableBytes { cfb.apply($0) }
                plain += chunk
                state = .legacy(entry: entry, auth: auth, cfb: cfb, plain: plain)
            }
        }
    }

    /// `t - now`, saturated to Int64's range: both are peer- or clock-controlled 64-bit values.
    static func skew(_ t: Int64, _ now: Int64) -> Int64 {
        let (d, overflow) = t.subtractingReportingOverflow(now)
        if !overflow { return d }
        return t < now ? .min : .max
    }

    private static func failure(_ e: RequestHeader.ParseError) -> HandshakeFailure {
        switch e {
        case .tooShort: .badLength(0)
        case .badChecksum: .badChecksum
        case .invalidAddress: .invalidAddress
        case .unknownCommand(let c): .unsupportedCommand(c)
        }
    }

    private mutating func finish(_ plain: ArraySlice<UInt8>, entry e: UserTable.Entry, legacy: AuthIDKey?, now: Int64) -> Outcome {
        let header: RequestHeader
        do {
            header = try RequestHeader.parse(plain)
        } catch {
            // Legacy: the checksum is the only integrity check, so a mismatch taints the auth value
            // and drains; under AEAD it is redundant and the connection just closes (§7.3, §11.2).
            if let legacy, error == .badChecksum || error == .tooShort {
                users.taint(legacy)
                return reject(Self.failure(error), drain: error == .badChecksum)
            }
            return reject(Self.failure(error), drain: false)
        }
        guard sessions.insert(user: e.index, key: header.requestKey, iv: header.requestIV, now: now) else {
            if let legacy { users.taint(legacy) }
            return reject(.duplicateSession, drain: legacy != nil)
        }
        let sec = header.securityCode
        if sec == Security.auto.rawValue || sec > Security.zero.rawValue {
            return reject(.unsupportedSecurity(sec), drain: false)
        }
        if disableInsecure && [Security.none.rawValue, Security.legacy.rawValue, Security.unknown.rawValue,
                               Security.zero.rawValue].contains(sec) {
            return reject(.insecureSecurityDisallowed(sec), drain: false)
        }
        state = .done
        return .accepted(Accepted(header: header, user: e, legacy: legacy != nil, consumed: consumed,
                                  skew: legacy == nil ? matchedSkew : nil))
    }

    /// Bytes consumed so far (for drain accounting).
    public var consumedBytes: Int { consumed }
}
