// Decodes one tag out of V2Ray's geodata files without materialising the others.
//
//   geosite.dat: GeoSiteList { repeated GeoSite entry = 1 }
//     GeoSite   { string country_code = 1; repeated Domain domain = 2 }
//     Domain    { Type type = 1 (Plain=0 Regex=1 RootDomain=2 Full=3); string value = 2;
//                 repeated Attribute attribute = 3 }
//     Attribute { string key = 1; oneof { bool bool_value = 2; int64 int_value = 3 } }
//   geoip.dat:   GeoIPList { repeated GeoIP entry = 1 }
//     GeoIP     { string country_code = 1; repeated CIDR cidr = 2; bool inverse_match = 3 }
//     CIDR      { bytes ip = 1 (4 or 16 bytes); uint32 prefix = 2 }
//
// (v2fly app/router/routercommon/common.proto.) A full geosite.dat holds about a million domains in a
// few thousand entries; an entry whose country_code does not match is skipped with one length jump, so
// finding a tag costs a walk over entry headers, not a decode of the file. Other fields are skipped.
// Codes compare case-insensitively: files store "CN", configs write "cn".

enum GeoDataDecoder {
    struct SiteDomain: Equatable {
        enum Kind: UInt64 { case plain = 0, regex = 1, rootDomain = 2, full = 3 }
        var kind: Kind
        var value: String
        /// Attribute keys (`@cn`, `@ads`); V2Ray's attribute filter tests presence of the key only.
        var attributes: [String]
    }

    /// The domains of tag `code`, or nil if the file has no such tag.
    static func site(_ bytes: [UInt8], code: String) throws -> [SiteDomain]? {
        guard let entry = try findEntry(bytes, code: code) else { return nil }
        var domains: [SiteDomain] = []
        var reader = ProtobufReader(bytes, range: entry)
        while let field = try reader.nextField() {
            guard field.number == 2 else { try reader.skip(field.wireType); continue }
            try reader.require(field, .lengthDelimited)
            domains.append(try siteDomain(bytes, try reader.lengthDelimited()))
        }
        return domains
    }

    /// The blocks of tag `code` and its inverse_match flag, or nil if the file has no such tag.
    static func ip(_ bytes: [UInt8], code: String) throws -> IPSet? {
        guard let entry = try findEntry(bytes, code: code) else { return nil }
        var set = IPSet(cidrs: [])
        var reader = ProtobufReader(bytes, range: entry)
        while let field = try reader.nextField() {
            switch field.number {
            case 2:
                try reader.require(field, .lengthDelimited)
                set.cidrs.append(try cidr(bytes, try reader.lengthDelimited()))
            case 3:
                try reader.require(field, .varint)
                set.inverse = try reader.varint() != 0
            default:
                try reader.skip(field.wireType)
            }
        }
        return set
    }

    /// Every tag of a file, for error messages that suggest what exists.
    static func codes(_ bytes: [UInt8]) throws -> [String] {
        var codes: [String] = []
        var reader = ProtobufReader(bytes)
        while let field = try reader.nextField() {
            guard field.number == 1 else { try reader.skip(field.wireType); continue }
            try reader.require(field, .lengthDelimited)
            if let code = try countryCode(bytes, try reader.lengthDelimited()) { codes.append(code) }
        }
        return codes
    }

    // MARK: pieces

    private static func findEntry(_ bytes: [UInt8], code: String) throws -> Range<Int>? {
        let wanted = code.uppercased()
        var reader = ProtobufReader(bytes)
        while let field = try reader.nextField() {
            guard field.number == 1 else { try reader.skip(field.wireType); continue }
            try reader.require(field, .lengthDelimited)
            let entry = try reader.lengthDelimited()
            if let entryCode = try countryCode(bytes, entry), entryCode.uppercased() == wanted { return entry }
        }
        return nil
    }

    /// country_code of one entry. Writers put it first, so normally one field is read; the loop only
    /// walks further for files that order fields differently.
    private static func countryCode(_ bytes: [UInt8], _ entry: Range<Int>) throws -> String? {
        var reader = ProtobufReader(bytes, range: entry)
        while let field = try reader.nextField() {
            if field.number == 1 {
                try reader.require(field, .lengthDelimited)
                return try reader.string()
            }
            try reader.skip(field.wireType)
        }
        return nil
    }

    private static func siteDomain(_ bytes: [UInt8], _ range: Range<Int>) throws -> SiteDomain {
        var reader = ProtobufReader(bytes, range: range)
        var domain = SiteDomain(kind: .plain, value: "", attributes: [])
        while let field = try reader.nextField() {
            switch field.number {
            case 1:
                try reader.require(field, .varint)
                let start = reader.offset
                let raw = try reader.varint()
                guard let kind = SiteDomain.Kind(rawValue: raw) else {
                    throw ProtobufReader.Malformed(offset: start, reason: "unknown domain type \(raw)")
                }
                domain.kind = kind
            case 2:
                try reader.require(field, .lengthDelimited)
                domain.value = try reader.string()
            case 3:
                try reader.require(field, .lengthDelimited)
                var attribute = ProtobufReader(bytes, range: try reader.lengthDelimited())
                while let attributeField = try attribute.nextField() {
                    if attributeField.number == 1 {
                        try attribute.require(attributeField, .lengthDelimited)
                        domain.attributes.append(try attribute.string())
                    } else {
                        try attribute.skip(attributeField.wireType)
                    }
                }
            default:
                try reader.skip(field.wireType)
            }
        }
        return domain
    }

    private static func cidr(_ bytes: [UInt8], _ range: Range<Int>) throws -> CIDR {
        var reader = ProtobufReader(bytes, range: range)
        var address: [UInt8] = []
        var prefix: UInt64 = 0
        while let field = try reader.nextField() {
            switch field.number {
            case 1:
                try reader.require(field, .lengthDelimited)
                address = Array(bytes[try reader.lengthDelimited()])
            case 2:
                try reader.require(field, .varint)
                prefix = try reader.varint()
            default:
                try reader.skip(field.wireType)
            }
        }
        guard address.count == 4 || address.count == 16 else {
            throw ProtobufReader.Malformed(offset: range.lowerBound, reason: "CIDR address of \(address.count) bytes")
        }
        guard prefix <= UInt64(address.count * 8) else {
            throw ProtobufReader.Malformed(offset: range.lowerBound, reason: "CIDR prefix \(prefix) too long")
        }
        return CIDR(address: address, prefix: Int(prefix))
    }
}
