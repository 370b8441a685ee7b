import Shared

/// Inputs the benchmarks share, built outside every measurement. Keys are random (no figure
/// depends on their values); the clock is fixed so that AuthIDs always fall in the time window.
enum Fixtures {
    static let now: Int64 = 1_780_000_000

    /// The user every client header is sealed for.
    static let client = UserID(bytes: SecureRandom.bytes(16))

    /// `count` users with the client's *last*, as in compare.py's "N users" runs: a client that
    /// is not remembered by address is found only after the scan passed every other user.
    static func users(_ count: Int) -> UserTable {
        var list: [(id: UserID, alterId: Int, level: Int, email: String?)] = []
        list.reserveCapacity(count)
        for i in 0..<(count - 1) {
            list.append((UserID(bytes: SecureRandom.bytes(16)), 0, 0, "u\(i)"))
        }
        list.append((client, 0, 0, "client"))
        return try! UserTable(users: list)
    }

    /// A TCP request to a domain, like a browser's through a client (v2ray sends S|M|P for AEAD).
    static func request(_ security: Security, _ options: RequestOptions,
                        command: RequestCommand = .tcp) -> RequestHeader {
        RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 0x5A,
                      options: options, security: security, command: command, port: 443,
                      address: .domain("www.example.com"), padding: [UInt8](repeating: 0, count: 7))
    }

    /// The whole AEAD request header a client sends (AuthID ‖ length ‖ nonce ‖ command).
    static func sealedHeader(_ request: RequestHeader) -> [UInt8] {
        try! AEADHeader.seal(request, cmdKey: client.cmdKey, time: now)
    }
}

/// The VMess option bits as the protocol notes write them (§6.2): S, M, P, A.
extension RequestOptions {
    var shortName: String {
        var s = ""
        if contains(.chunkStream) { s += "S" }
        if contains(.chunkMasking) { s += "M" }
        if contains(.globalPadding) { s += "P" }
        if contains(.authenticatedLength) { s += "A" }
        return s
    }
}
