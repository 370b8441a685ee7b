/// The server name (SNI, RFC 6066) of a TLS ClientHello in the first handshake record. Every length
/// inside comes from the client and is checked against what encloses it before it is used.
enum TLSServerNameSniffer {
    static func sniff(_ bytes: ArraySlice<UInt8>) -> SniffResult {
        // Record header: handshake (22), version 3.x, length.
        let b = Array(bytes.prefix(5))
        if b.count >= 1 && b[0] != 22 { return .unknown }
        if b.count >= 2 && b[1] != 3 { return .unknown }
        guard b.count == 5 else { return .needMore }
        let recordLength = Int(b[3]) << 8 | Int(b[4])
        let start = bytes.startIndex + 5
        guard bytes.count - 5 >= recordLength else { return .needMore }
        var r = Reader(bytes[start..<(start + recordLength)])
        // Handshake header: client_hello (1), 24-bit length, the body within this record.
        guard r.u8() == 1, let helloLength = r.u24(), var hello = r.sub(helloLength) else { return .unknown }
        guard hello.skip(2 + 32),                         // legacy_version, random
              let sessionID = hello.u8(), sessionID <= 32, hello.skip(sessionID),
              let suites = hello.u16(), suites % 2 == 0, hello.skip(suites),
              let compression = hello.u8(), hello.skip(compression),
              let extensionsLength = hello.u16(), var extensions = hello.sub(extensionsLength)
        else { return .unknown }
        while !extensions.isEmpty {
            guard let type = extensions.u16(), let length = extensions.u16(), var body = extensions.sub(length) else {
                return .unknown
            }
            guard type == 0 else { continue }  // server_name
            guard let listLength = body.u16(), var list = body.sub(listLength) else { return .unknown }
            while !list.isEmpty {
                guard let nameType = list.u8(), let nameLength = list.u16(), let name = list.bytes(nameLength) else {
                    return .unknown
                }
                guard nameType == 0 else { continue }  // host_name
                // RFC 6066: no trailing dot; an empty name is no name.
                guard !name.isEmpty, name.last != UInt8(ascii: ".") else { return .unknown }
                let lower = name.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }
                return .found(protocol: "tls", domain: String(decoding: lower, as: UTF8.self))
            }
        }
        return .found(protocol: "tls", domain: nil)
    }

    /// The smallest ClientHello naming a server (one record: TLS 1.3 version bytes, a fixed random, no
    /// session id, one suite, one server_name extension): what the sniffer reads, for tests and fuzz
    /// seeds. `name` up to 200 bytes.
    static func minimalClientHello(serverName name: String) -> [UInt8] {
        let n = Array(name.utf8.prefix(200))
        let entry: [UInt8] = [0, 0, UInt8(n.count)] + n
        let sni: [UInt8] = [0, 0, 0, UInt8(entry.count + 2), 0, UInt8(entry.count)] + entry
        let body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0, 0, 2, 0x13, 0x01, 1, 0, 0, UInt8(sni.count)] + sni
        let handshake: [UInt8] = [1, 0, 0, UInt8(body.count)] + body
        return [22, 3, 1, 0, UInt8(handshake.count)] + handshake
    }

    /// Big-endian reads that fail (nil/false) instead of reading past the end.
    private struct Reader {
        private var rest: ArraySlice<UInt8>
        init(_ bytes: ArraySlice<UInt8>) { rest = bytes }
        var isEmpty: Bool { rest.isEmpty }

        mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, rest.count >= n else { return nil }
            defer { rest = rest.dropFirst(n) }
            return rest.prefix(n)
        }
        mutating func sub(_ n: Int) -> Reader? { bytes(n).map(Reader.init) }
        mutating func skip(_ n: Int) -> Bool { bytes(n) != nil }
        mutating func u8() -> Int? { bytes(1).map { Int($0.first!) } }
        mutating func u16() -> Int? { bytes(2).map { $0.reduce(0) { $0 << 8 | Int($1) } } }
        mutating func u24() -> Int? { bytes(3).map { $0.reduce(0) { $0 << 8 | Int($1) } } }
    }
}
