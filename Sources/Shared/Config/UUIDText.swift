// UUID text as v2fly reads it (common/uuid/uuid.go, ParseString; vmess-protocol.md §2.1): 32 hex
// digits in groups of 8-4-4-4-12, each group optionally preceded by a single '-'. So the usual
// dashed form, the bare 32-digit form and mixtures are accepted. Unlike v2fly, trailing text is
// rejected (v2fly stops reading after the last group and ignores the rest, which hides typos).
// Xray's "any short string becomes a UUIDv5" rule is not applied: v2fly rejects such ids.

/// The canonical form (lower case, dashed 8-4-4-4-12) of a UUID written as v2fly accepts it, else nil.
public func canonicalUUID(_ text: String) -> String? {
    var input = Array(text.utf8)[...]
    var groups: [String] = []
    for length in [8, 4, 4, 4, 12] {
        if input.first == UInt8(ascii: "-") { input = input.dropFirst() }
        guard input.count >= length else { return nil }
        var group = ""
        for b in input.prefix(length) {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"):
                group.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "A")...UInt8(ascii: "F"):
                group.unicodeScalars.append(Unicode.Scalar(b + 0x20))  // to lower case
            default:
                return nil
            }
        }
        groups.append(group)
        input = input.dropFirst(length)
    }
    return input.isEmpty ? groups.joined(separator: "-") : nil
}
