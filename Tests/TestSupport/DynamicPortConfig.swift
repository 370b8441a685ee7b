// The server side of a dynamic-port test, the same for vmessd and the reference V2Ray: a main VMess
// inbound whose `detour` points at a port-range inbound (allocate "always"), and routing by inbound
// tag to two echo targets, so that where a connection came in shows in which target it reached.

public enum DynamicPortConfig {
    /// `inbounds`, `outbounds` and `routing` of the server: `client` is the user's JSON object.
    /// `allocate`: the detour inbound's allocation (default "always").
    public static func sections(mainPort: UInt16, detourPorts: ClosedRange<UInt16>, client: [String: Any],
                                mainTarget: UInt16, detourTarget: UInt16,
                                allocate: [String: Any] = ["strategy": "always"]) -> [String: Any] {
        [
            "inbounds": [
                ["port": Int(mainPort), "listen": "127.0.0.1", "protocol": "vmess", "tag": "main",
                 "settings": ["clients": [client], "detour": ["to": "dynamic"]]],
                ["port": "\(detourPorts.lowerBound)-\(detourPorts.upperBound)", "listen": "127.0.0.1", "protocol": "vmess",
                 "tag": "dynamic", "settings": ["default": ["level": 0, "alterId": 0]], "allocate": allocate],
            ],
            "outbounds": [
                ["protocol": "freedom", "tag": "direct", "settings": ["redirect": "127.0.0.1:\(mainTarget)"]],
                ["protocol": "freedom", "tag": "after-switch", "settings": ["redirect": "127.0.0.1:\(detourTarget)"]],
            ],
            "routing": ["rules": [["type": "field", "inboundTag": ["dynamic"], "outboundTag": "after-switch"]]],
        ]
    }
}
