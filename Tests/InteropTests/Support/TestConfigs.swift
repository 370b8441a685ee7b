// Config generators for the server under test (vmessd, v4 and v5 formats), the reference V2Ray server
// and the V2Ray client. Built as dictionaries and serialized with JSONSerialization, so every value is
// properly quoted.

import Foundation

struct VMessTestUser {
    var id: String
    var alterId: Int = 0
    /// aes-128-gcm, chacha20-poly1305, none, zero, auto.
    var security: String

    init(id: String = UUID().uuidString.lowercased(), alterId: Int = 0, security: String) {
        self.id = id
        self.alterId = alterId
        self.security = security
    }

    var json: [String: Any] { ["id": id, "alterId": alterId, "security": security] }
}

enum TestConfigs {
    /// v4: one vmess inbound on 127.0.0.1:port with `users` as clients, and a freedom outbound. The
    /// same file serves vmessd and the reference v2ray.
    /// `daemon`: vmessd's own top-level "vmessd" object (vmessd only).
    static func serverV4(port: UInt16, users: [VMessTestUser], logLevel: String = "info",
                         daemon: [String: Any]? = nil) -> String {
        var object: [String: Any] = [
            "log": ["loglevel": logLevel],
            "inbounds": [[
                "port": Int(port),
                "listen": "127.0.0.1",
                "protocol": "vmess",
                "tag": "vmess-in",
                "settings": ["clients": users.map(\.json)],
            ]],
            "outbounds": [["protocol": "freedom", "settings": [String: Any]()]],
        ]
        if let daemon { object["vmessd"] = daemon }
        return json(object)
    }

    /// v5 (vmessd only; v2ray 4.34 cannot read it).
    static func serverV5(port: UInt16, uuids: [String]) -> String {
        json([
            "inbounds": [[
                "protocol": "vmess",
                "port": Int(port),
                "listen": "127.0.0.1",
                "settings": ["users": uuids],
            ]],
            "outbounds": [["protocol": "freedom"]],
        ])
    }

    /// Reference v2ray client (v4): dokodemo-door on 127.0.0.1:`dokodemoPort` forwarding to
    /// 127.0.0.1:`targetPort`, a socks5 inbound (no auth, UDP on) on 127.0.0.1:`socksPort`, and a
    /// vmess outbound to 127.0.0.1:`serverPort`. The socks inbound comes last: v2ray starts untagged
    /// inbounds in order, so "socks accepts" implies "dokodemo accepts" — and probing the socks port
    /// for readiness never opens a proxied connection to the target.
    static func v2rayClient(dokodemoPort: UInt16, targetPort: UInt16, socksPort: UInt16,
                            serverPort: UInt16, user: VMessTestUser, logLevel: String = "info") -> String {
        json([
            "log": ["loglevel": logLevel],
            // V2Ray cuts a connection ~1 s after one direction ended if the other stays idle
            // (policy uplinkOnly/downlinkOnly). The tests half-close after sending, and a debug-build
            // server under 64 parallel connections can legitimately pause longer than that, so the
            // client gets generous timers: the tests check data, not the server's latency.
            "policy": ["levels": ["0": ["handshake": 10, "connIdle": 300, "uplinkOnly": 20, "downlinkOnly": 20]]],
            "inbounds": [
                [
                    "port": Int(dokodemoPort),
                    "listen": "127.0.0.1",
                    "protocol": "dokodemo-door",
                    "settings": ["address": "127.0.0.1", "port": Int(targetPort), "network": "tcp"],
                ],
                [
                    "port": Int(socksPort),
                    "listen": "127.0.0.1",
                    "protocol": "socks",
                    "settings": ["auth": "noauth", "udp": true, "ip": "127.0.0.1"],
                ],
            ],
            "outbounds": [[
                "protocol": "vmess",
                "settings": ["vnext": [[
                    "address": "127.0.0.1",
                    "port": Int(serverPort),
                    "users": [user.json],
                ]]],
            ]],
        ])
    }

    static func json(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
