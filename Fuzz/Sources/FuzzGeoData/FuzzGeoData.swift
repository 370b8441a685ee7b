import FuzzSupport
@testable import Shared

// The routing inputs an operator's files control: V2Ray geodata files (the config names them, and
// files from third-party lists are common) and `regexp:` patterns, compiled as the config loader
// compiles them. Input: mode, then the payload.
//   mode 0: the payload is a geosite.dat: every tag's domains decoded (the first 8 tags) and compiled
//           into a DomainMatcher, which must match each `full:` and `domain:` value it was built from;
//   mode 1: the payload is a geoip.dat: every tag's blocks decoded and merged into an IPRangeSet,
//           which must contain each block's own address;
//   mode 2: patterns and a domain: the payload up to the first 0 is a list of patterns separated by
//           newlines, the rest the domain; the NFA (DomainRegex) and the DFA built from it must agree.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte() % 3
    let payload = input.rest()
    switch mode {
    case 0: site(payload)
    case 1: ip(payload)
    default: regex(payload)
    }
    return 0
}

func site(_ file: [UInt8]) {
    guard let codes = try? GeoDataDecoder.codes(file) else { return }
    for code in codes.prefix(8) {
        guard let domains = try? GeoDataDecoder.site(file, code: code) else { continue }
        var set = DomainSet()
        for domain in domains {
            switch domain.kind {
            case .plain: set.substrings.append(domain.value.lowercased())
            case .regex:
                guard (try? DomainRegex.validate(domain.value)) != nil else { continue }
                set.regexes.append(domain.value)
            case .rootDomain: set.rootDomains.append(domain.value.lowercased())
            case .full: set.full.append(domain.value.lowercased())
            }
        }
        guard let matcher = try? DomainMatcher(set) else { continue }
        for value in set.full + set.rootDomains where !value.isEmpty {
            precondition(matcher.matches(Array(value.utf8)), "matcher misses its own pattern \(value)")
        }
    }
}

func ip(_ file: [UInt8]) {
    guard let codes = try? GeoDataDecoder.codes(file) else { return }
    for code in codes.prefix(8) {
        guard let set = try? GeoDataDecoder.ip(file, code: code) else { continue }
        let ranges = IPRangeSet(set.cidrs)
        for cidr in set.cidrs {
            precondition(ranges.contains(cidr.address), "range set misses its own block \(cidr)")
        }
    }
}

func regex(_ payload: [UInt8]) {
    let cut = payload.firstIndex(of: 0) ?? payload.count
    let patterns = String(decoding: payload[..<cut], as: UTF8.self)
        .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let domain = Array(payload[min(cut + 1, payload.count)...])
    guard let program = try? DomainRegex(patterns) else { return }
    // A small state budget, so that the DFA's give-up path (back to the NFA) is exercised too.
    let dfa = DomainRegexDFA(program, maximumStates: 64)
    precondition(program.matches(domain) == dfa.matches(domain), "NFA and DFA disagree on \(patterns)")
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        // Tiny files in the real layout (GeoDataDecoder's header comment), written field by field.
        func varint(_ v: UInt64) -> [UInt8] {
            var v = v, out: [UInt8] = []
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            return out + [UInt8(v)]
        }
        func bytes(_ field: UInt64, _ body: [UInt8]) -> [UInt8] { varint(field << 3 | 2) + varint(UInt64(body.count)) + body }
        func string(_ field: UInt64, _ text: String) -> [UInt8] { bytes(field, Array(text.utf8)) }
        func number(_ field: UInt64, _ v: UInt64) -> [UInt8] { varint(field << 3) + varint(v) }
        func domain(_ kind: UInt64, _ value: String, _ attributes: [String] = []) -> [UInt8] {
            bytes(2, number(1, kind) + string(2, value) + attributes.flatMap { bytes(3, string(1, $0) + number(2, 1)) })
        }
        let geosite = bytes(1, string(1, "EXAMPLE") + domain(2, "example.com") + domain(3, "www.example.org", ["cn"])
                               + domain(0, "ads") + domain(1, "^api[0-9]+\\.example\\.net$"))
            + bytes(1, string(1, "OTHER") + domain(2, "other.test", ["ads", "cn"]))
        let geoip = bytes(1, string(1, "PRIVATE") + bytes(2, bytes(1, [10, 0, 0, 0]) + number(2, 8))
                             + bytes(2, bytes(1, [0xFC] + [UInt8](repeating: 0, count: 15)) + number(2, 7)))
            + bytes(1, string(1, "XX") + bytes(2, bytes(1, [203, 0, 113, 7]) + number(2, 32)) + number(3, 1))
        func patterns(_ list: [String], _ domain: String) -> [UInt8] {
            [2] + Array(list.joined(separator: "\n").utf8) + [0] + Array(domain.utf8)
        }
        return [
            [0] + geosite,
            [1] + geoip,
            patterns(["^api[0-9]+\\.example\\.net$"], "api12.example.net"),
            patterns(["(a+)+$", "b{2,5}c"], "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"),
            patterns(["\\Awww\\.[^.]+\\.(com|org)\\z", "(?:x|y)*z?"], "www.test.org"),
            patterns(["[\\w-]{3}\\d\\s?"], "abc1"),
        ]
    }
    return 0
}
