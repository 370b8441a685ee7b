// Builds DNS responses byte by byte for the parser tests, so each hostile variant is one edit of a
// known-good message.

@testable import Shared

struct DNSMessageBuilder {
    var bytes: [UInt8] = []

    static func name(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in text.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        return out + [0]
    }

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    /// Header + the question (name at offset 12).
    init(id: UInt16 = 0x1234, flags: UInt16 = 0x8180, qd: UInt16 = 1, an: UInt16, ns: UInt16 = 0,
         question: String = "www.example.com", type: UInt16 = 1) {
        bytes = Self.u16(id) + Self.u16(flags) + Self.u16(qd) + Self.u16(an) + Self.u16(ns) + Self.u16(0)
        bytes += Self.name(question) + Self.u16(type) + Self.u16(1)
    }

    /// A record whose owner is `owner` (raw name bytes, e.g. a pointer [0xC0, 12]).
    mutating func record(owner: [UInt8] = [0xC0, 12], type: UInt16, ttl: UInt32 = 300, data: [UInt8]) {
        bytes += owner + Self.u16(type) + Self.u16(1) + Self.u32(ttl) + Self.u16(UInt16(data.count)) + data
    }
}
