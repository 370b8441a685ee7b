// mKCP settings in both formats:
//
//   v4 kcpSettings:        {mtu, tti, uplinkCapacity, downlinkCapacity, congestion, readBufferSize,
//                           writeBufferSize (MiB; 0 means 512 KiB as in V2Ray), header: {type}, seed}
//   v5 transportSettings:  {mtu: {value}, tti: {value}, uplink_capacity: {value}, downlink_capacity: {value},
//                           congestion, read_buffer: {size}, write_buffer: {size} (bytes),
//                           header_config: {"@type": "v2ray.core.transport.internet.headers.wechat.VideoConfig"},
//                           seed: {seed}}
//
// Ranges follow V2Ray's v4 loader (MTU 576-1460, TTI 10-100). V2Ray takes any uint32 capacity and
// buffer size and overflows silently in its window arithmetic; here they are bounded so that every
// derived window is a sane, finite number of segments.

extension ConfigParser {
    static let kcpMaxCapacity = 1000  // MB/s
    static let kcpMaxBufferMiB = 64

    static let kcpHeaderTypesV5: [String: KCPSettings.HeaderType] = [
        "v2ray.core.transport.internet.headers.noop.Config": .none,
        "v2ray.core.transport.internet.headers.noop.ConnectionConfig": .none,
        "v2ray.core.transport.internet.headers.srtp.Config": .srtp,
        "v2ray.core.transport.internet.headers.utp.Config": .utp,
        "v2ray.core.transport.internet.headers.wechat.VideoConfig": .wechatVideo,
        "v2ray.core.transport.internet.headers.tls.PacketConfig": .dtls,
        "v2ray.core.transport.internet.headers.wireguard.WireguardConfig": .wireguard,
    ]

    static func readKCPV4(_ node: ConfigNode) throws -> KCPSettings {
        var r = try node.object()
        var kcp = KCPSettings()
        if let n = r.take("mtu") { kcp.mtu = try n.int(576...1460) }
        if let n = r.take("tti") { kcp.tti = try n.int(10...100) }
        if let n = r.take("uplinkCapacity") { kcp.uplinkCapacity = try n.int(0...kcpMaxCapacity) }
        if let n = r.take("downlinkCapacity") { kcp.downlinkCapacity = try n.int(0...kcpMaxCapacity) }
        if let n = r.take("congestion") { kcp.congestion = try n.bool() }
        if let n = r.take("readBufferSize") { kcp.readBufferSize = try mebibytes(n.int(0...kcpMaxBufferMiB)) }
        if let n = r.take("writeBufferSize") { kcp.writeBufferSize = try mebibytes(n.int(0...kcpMaxBufferMiB)) }
        if let header = r.take("header") {
            var h = try header.object()
            if let type = h.take("type") {
                let name = try type.string()
                guard let kind = KCPSettings.HeaderType(rawValue: name) else {
                    throw type.mismatch("one of " + KCPSettings.HeaderType.allCases.map(\.rawValue).joined(separator: ", "))
                }
                kcp.header = kind
            }
            try h.finish()
        }
        if let seed = r.take("seed") { kcp.seed = try readOptionalString(seed) }
        try r.finish()
        return kcp
    }

    static func readKCPV5(_ node: ConfigNode) throws -> KCPSettings {
        var r = try node.object(protoNames: true)
        var kcp = KCPSettings()
        func wrapped(_ name: String, _ field: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let n = r.take(name) else { return nil }
            var o = try n.object(protoNames: true)
            let value = try o.take(field)?.int(range) ?? 0
            try o.finish()
            return value
        }
        // An absent `value` is protobuf's zero, which V2Ray then uses as is; zero MTU or TTI would
        // divide by zero there, so they are range-checked like v4's.
        if let v = try wrapped("mtu", "value", 576...1460) { kcp.mtu = v }
        if let v = try wrapped("tti", "value", 10...100) { kcp.tti = v }
        if let v = try wrapped("uplinkCapacity", "value", 0...kcpMaxCapacity) { kcp.uplinkCapacity = v }
        if let v = try wrapped("downlinkCapacity", "value", 0...kcpMaxCapacity) { kcp.downlinkCapacity = v }
        if let n = r.take("congestion") { kcp.congestion = try n.bool() }
        let maxBytes = kcpMaxBufferMiB * 1024 * 1024
        if let v = try wrapped("readBuffer", "size", 0...maxBytes) { kcp.readBufferSize = max(v, 1) }
        if let v = try wrapped("writeBuffer", "size", 0...maxBytes) { kcp.writeBufferSize = max(v, 1) }
        if let header = r.take("headerConfig") {
            var h = try header.object(protoNames: true)
            let typeNode = try h.require("@type")
            let url = try typeNode.string()
            let type = url.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? url
            guard let kind = kcpHeaderTypesV5[type] else {
                throw typeNode.mismatch("one of " + kcpHeaderTypesV5.keys.sorted().map { JSONC.quote($0) }.joined(separator: ", "))
            }
            try h.finish()
            kcp.header = kind
        }
        if let seed = r.take("seed") {
            var s = try seed.object(protoNames: true)
            kcp.seed = try s.take("seed").map(readOptionalString) ?? nil
            try s.finish()
        }
        try r.finish()
        return kcp
    }

    /// V2Ray's v4 loader: n MiB, and 0 means 512 KiB.
    private static func mebibytes(_ n: Int) -> Int { n > 0 ? n * 1024 * 1024 : 512 * 1024 }
}
