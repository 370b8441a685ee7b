/// An HTTP/1 request head: a method V2Ray knows, then the Host header's name (port and IPv6
/// brackets removed, lower-cased). A head that ends without a Host header is not sniffed (V2Ray's
/// sniffer needs a name too).
enum HTTPHostSniffer {
    /// Each with the space that ends it.
    private static let methods: [[UInt8]] = ["get", "post", "head", "put", "delete", "options", "connect", "patch", "trace"]
        .map { Array($0.utf8) + [UInt8(ascii: " ")] }

    static func sniff(_ bytes: ArraySlice<UInt8>) -> SniffResult {
        switch method(bytes) {
        case .unknown: return .unknown
        case .needMore, .found: break
        }
        guard let firstBreak = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return .needMore }
        var lineStart = firstBreak + 1
        while let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = bytes[lineStart..<lineEnd]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty { return .unknown }  // the head ended without a Host header
            if let colon = line.firstIndex(of: UInt8(ascii: ":")), isHost(line[..<colon]) {
                guard let host = hostName(line[(colon + 1)...]) else { return .unknown }
                return .found(protocol: "http1", domain: host)
            }
            lineStart = lineEnd + 1
        }
        return .needMore
    }

    /// Whether the bytes start with "METHOD " (case-insensitive), could still, or cannot.
    private static func method(_ bytes: ArraySlice<UInt8>) -> SniffResult {
        var undecided = false
        for candidate in methods {
            let n = min(bytes.count, candidate.count)
            guard zip(bytes.prefix(n), candidate).allSatisfy({ lowercased($0) == $1 }) else { continue }
            if n == candidate.count { return .found(protocol: "http1", domain: nil) }
            undecided = true
        }
        return undecided ? .needMore : .unknown
    }

    private static func isHost(_ name: ArraySlice<UInt8>) -> Bool {
        name.count == 4 && zip(name, "host".utf8).allSatisfy { lowercased($0) == $1 }
    }

    /// "example.com", "example.com:8080", "[2001:db8::1]:443" → the name or address without port.
    private static func hostName(_ value: ArraySlice<UInt8>) -> String? {
        let space: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t")]
        var v = value.drop(while: space.contains)
        while let last = v.last, space.contains(last) { v = v.dropLast() }
        var host = v
        if v.first == UInt8(ascii: "[") {
            guard let close = v.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            host = v[(v.startIndex + 1)..<close]
        } else if let colon = v.firstIndex(of: UInt8(ascii: ":")) {
            let port = v[(colon + 1)...]
            // One colon then digits: a port. More colons: an unbracketed IPv6 literal, kept whole.
            if !port.contains(UInt8(ascii: ":")) {
                guard port.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
                host = v[..<colon]
            }
        }
        guard !host.isEmpty else { return nil }
        return String(decoding: host.map(lowercased), as: UTF8.self)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
