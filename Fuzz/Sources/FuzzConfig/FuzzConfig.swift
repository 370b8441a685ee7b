import Foundation
import FuzzSupport
@testable import Shared

// The config reader: JSONC (comments, trailing commas, BOM, UTF-8 checks, depth limit) and the v4/v5
// ConfigParser behind it. Input: mode byte, then the file's bytes.
//   mode bit 0: JSONC only (and the line/column computation of its error positions);
//   otherwise the whole ConfigParser, which must answer with a Config or a ConfigError, nothing else.
// (A config may name certificate files; scripts/fuzz.sh runs the targets with stdin from /dev/null
// so that a fuzzed "/dev/stdin" cannot block.)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let jsoncOnly = input.bool()
    let bytes = input.rest()
    if jsoncOnly {
        do {
            _ = try JSONC.parse(bytes)
        } catch let error as JSONC.SyntaxError {
            precondition(error.line >= 1 && error.column >= 1, "position \(error.line):\(error.column)")
        } catch {
            preconditionFailure("JSONC threw \(error)")
        }
        return 0
    }
    do {
        _ = try ConfigParser.parse(bytes: bytes, sourceFile: "fuzz.json")
    } catch is ConfigError {
    } catch {
        preconditionFailure("ConfigParser threw something other than a ConfigError: \(error)")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        // The configs the tests and the docs use: test fixtures and deploy/examples, read from the
        // repository this target was built from; plus the demo config and a few JSONC corner cases.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        var seeds: [[UInt8]] = []
        for dir in ["Tests/SharedTests/Fixtures/config", "deploy/examples"] {
            let url = root.appendingPathComponent(dir)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            for name in names.sorted() {
                if let d = FileManager.default.contents(atPath: url.appendingPathComponent(name).path) {
                    seeds.append([0] + Array(d))
                }
            }
        }
        let demo = ConfigParser.demo(uuid: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", port: 10086)
        if let json = try? JSONEncoder().encode(demo) { seeds.append([1] + Array(json)) }
        let v5 = #"{"inbounds":[{"protocol":"vmess","port":10086,"listen":"0.0.0.0","settings":{"users":["6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"]}}],"outbounds":[{"protocol":"freedom"}]}"#
        let v4 = """
            \u{FEFF}// comment
            { "inbounds": [{ "port": 10086, "listen": "0.0.0.0", "protocol": "vmess", /* block */
                "settings": { "clients": [{ "id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", "alterId": 4, }] } }],
              "outbounds": [{ "protocol": "freedom" }], "log": {"loglevel": "warning"} }
            """
        // The DNS server URL forms (https, https+local, tcp) and the route check of the resolver's own queries.
        let dns = #"{"dns":{"servers":["https://1.1.1.1/dns-query","https+local://dns.google:8443/resolve?ct=1",{"address":"HTTPS://[2001:db8::1]","domains":["domain:test"]},"tcp+local://9.9.9.9:853","localhost"],"tag":"dns-in"},"outbounds":[{"protocol":"freedom"},{"protocol":"blackhole","tag":"b"}],"routing":{"domainStrategy":"IPOnDemand","rules":[{"inboundTag":["dns-in"],"domain":["full:dns.google"],"outboundTag":"b"}]}}"#
        seeds += [[0] + Array(dns.utf8)]
        seeds += [[0] + Array(v5.utf8), [0] + Array(v4.utf8), [1] + Array(v4.utf8),
                  [1] + Array(#"[1, -2.5e3, "\u00e9\ud83d\ude00", true, false, null, {"a": {"b": []}}]"#.utf8)]
        return seeds
    }
    return 0
}
