// Writes small geosite/geoip files in V2Ray's protobuf format for the tests, so no downloaded geodata is
// needed (and none is committed).

import Foundation

enum GeoDataFixture {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        while value >= 0x80 {
            out.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
        return out
    }

    static func field(_ number: UInt64, _ bytes: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(bytes.count)) + bytes
    }

    static func field(_ number: UInt64, varint value: UInt64) -> [UInt8] {
        varint(number << 3) + varint(value)
    }

    static func string(_ number: UInt64, _ text: String) -> [UInt8] { field(number, Array(text.utf8)) }

    /// type: 0 plain, 1 regex, 2 domain:, 3 full:.
    static func domain(_ type: UInt64, _ value: String, attributes: [String] = []) -> [UInt8] {
        var bytes = field(1, varint: type) + string(2, value)
        for attribute in attributes { bytes += field(3, string(1, attribute) + field(2, varint: 1)) }
        return bytes
    }

    static func site(_ code: String, _ domains: [[UInt8]]) -> [UInt8] {
        field(1, string(1, code) + domains.flatMap { field(2, $0) })
    }

    static func ip(_ code: String, _ cidrs: [([UInt8], UInt64)], inverse: Bool = false) -> [UInt8] {
        var entry = string(1, code)
        for (address, prefix) in cidrs { entry += field(2, field(1, address) + field(2, varint: prefix)) }
        if inverse { entry += field(3, varint: 1) }
        return field(1, entry)
    }

    static let geosite: [UInt8] =
        site("OTHER", [domain(2, "other.example")])
        + site("TEST", [domain(2, "example.com", attributes: ["ads"]), domain(3, "full.example.org"),
                        domain(0, "tracker"), domain(1, "^cdn[0-9]+\\.example\\.net$")])
        + site("CN", [domain(2, "cn"), domain(2, "baidu.com")])

    static let geoip: [UInt8] =
        ip("US", [([8, 8, 8, 0], 24)])
        + ip("CN", [([1, 0, 1, 0], 24), ([36, 0, 0, 0], 10), ([0x24, 0x0e] + [UInt8](repeating: 0, count: 14), 20)])
        + ip("PRIVATE", [([10, 0, 0, 0], 8)])
        + ip("NOTCN", [([1, 0, 1, 0], 24)], inverse: true)

    /// A fresh directory holding geosite.dat, geoip.dat and extra files.
    static func directory(extra: [String: [UInt8]] = [:]) throws -> String {
        let dir = NSTemporaryDirectory() + "vmessd-geodata-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var files = extra
        files["geosite.dat", default: geosite] = files["geosite.dat"] ?? geosite
        files["geoip.dat", default: geoip] = files["geoip.dat"] ?? geoip
        for (name, bytes) in files {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        return dir
    }
}
