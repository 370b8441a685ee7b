@testable import FuzzSupport
@testable import Shared

// The PROXY protocol header parser (v1 text, v2 binary). Input: a size-bound byte, then the bytes.
//   bound: 16 + byte * 32 (16-8176), so headers near and past the bound are reached.
// Whatever the bytes: never a trap, `consumed` within the input and the bound (107 for v1), and the
// verdict on every prefix agrees with the verdict on the whole (a prefix of a header is `needMore`;
// an invalid input has no parsed prefix).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bound = 16 + Int(input.byte()) * 32
    let bytes = input.rest()
    func parse(_ count: Int) -> ProxyProtocolHeader.ParseResult {
        bytes.withUnsafeBytes { ProxyProtocolHeader.parse(UnsafeRawBufferPointer(rebasing: $0[..<count]), maxLength: bound) }
    }
    let whole = parse(bytes.count)
    if case .parsed(_, let consumed) = whole {
        precondition(consumed > 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
        precondition(consumed <= max(bound, ProxyProtocolHeader.maxV1Length), "consumed \(consumed) past the bound \(bound)")
        if bytes.first == UInt8(ascii: "P") { precondition(consumed <= ProxyProtocolHeader.maxV1Length) }
    }
    // Every prefix for short inputs, a spread of them for long ones.
    let step = max(1, bytes.count / 64)
    for cut in stride(from: 0, to: bytes.count, by: step) {
        let part = parse(cut)
        switch (whole, part) {
        case (.parsed(_, let n), _) where cut < n:
            precondition(part == .needMore, "prefix \(cut) of a \(n)-byte header: \(part)")
        case (.parsed, _):
            precondition(part == whole, "prefix \(cut) holding the whole header: \(part) vs \(whole)")
        case (.invalid, .parsed):
            preconditionFailure("prefix \(cut) parsed (\(part)) where the whole is \(whole)")
        case (.needMore, _):
            precondition(part == .needMore, "prefix \(cut): \(part) while the whole needs more")
        default:
            break
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let v4: [UInt8] = [198, 51, 100, 7, 203, 0, 113, 1, 0xC7, 0x38, 0x01, 0xBB]
        let v6: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
            + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1] + [0xC7, 0x38, 0x01, 0xBB]
        let tlvs: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x00, 0x02, 0x00, 0x03, 0x61, 0x2E, 0x62]
        func v2(_ command: UInt8, _ family: UInt8, _ body: [UInt8]) -> [UInt8] {
            signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        }
        return [
            [127] + Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\nVMESS".utf8),
            [127] + Array("PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n".utf8),
            [127] + Array("PROXY UNKNOWN\r\n".utf8),
            [127] + Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000\r\n".utf8),
            [127] + v2(0x21, 0x11, v4) + Array("VMESS".utf8),
            [127] + v2(0x21, 0x21, v6 + tlvs),
            [127] + v2(0x20, 0x00, []),
            [127] + v2(0x21, 0x31, [UInt8](repeating: 0x2F, count: 216)),
            [0] + v2(0x21, 0x11, v4 + tlvs),
            [127] + v2(0x21, 0x11, v4 + [0x04, 0x00, 0x09]),
        ]
    }
    return 0
}
