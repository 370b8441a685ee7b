import Foundation

/// Early data (ED) text coding, vmess-protocol.md §12.1 and §12.2: the client's first write carried in
/// the upgrade request, base64url-encoded.
///
/// - WebSocket: base64url *without* padding, in `Sec-WebSocket-Protocol` (or another configured
///   header) or appended to the path. Servers decode it the tolerant way Xray does: `+`→`-`, `/`→`_`,
///   `=` dropped first, so both alphabets and stray padding are accepted.
/// - httpupgrade (v2fly): base64url *with* padding in the configured header, decoded strictly.
enum EarlyData {
    /// Xray's decoding of `Sec-WebSocket-Protocol`. nil if the text is not base64 at all; a genuine
    /// sub-protocol name that happens to be base64 decodes too (the same trade-off Xray makes).
    static func decodeTolerant<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 3)
        for c in text.unicodeScalars {
            switch c {
            case "=": continue
            case "-", "+": standard.unicodeScalars.append("+")
            case "_", "/": standard.unicodeScalars.append("/")
            default: standard.unicodeScalars.append(c)
            }
        }
        return decodeStandard(padding: standard)
    }

    /// v2fly's httpupgrade header: the URL alphabet with `=` padding, nothing else accepted.
    static func decodePadded<S: StringProtocol>(_ text: S) -> [UInt8]? {
        guard text.utf8.count % 4 == 0 else { return nil }
        var standard = ""
        standard.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "-": standard.unicodeScalars.append("+")
            case "_": standard.unicodeScalars.append("/")
            case "+", "/": return nil
            default: standard.unicodeScalars.append(c)
            }
        }
        return Data(base64Encoded: standard).map { Array($0) }
    }

    /// base64url without padding (WebSocket ED).
    static func encodeRaw<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var text = encodePadded(bytes)
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// base64url with padding (v2fly httpupgrade ED).
    static func encodePadded<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(Data(bytes).base64EncodedString().map { c -> Character in
            switch c {
            case "+": "-"
            case "/": "_"
            default: c
            }
        })
    }

    /// Standard-alphabet base64 whose padding was removed: restores it and decodes.
    private static func decodeStandard(padding text: String) -> [UInt8]? {
        let count = text.utf8.count
        guard count % 4 != 1 else { return nil }
        let padded = text + String(repeating: "=", count: (4 - count % 4) % 4)
        return Data(base64Encoded: padded).map { Array($0) }
    }
}
