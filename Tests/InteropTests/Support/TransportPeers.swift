// Peers for the transport tests: vmessd started from a config text, the reference v2ray client with
// streamSettings, self-signed certificates made with openssl at test time, and the upstream example
// configs with only their ports and certificate paths replaced.

import Foundation
import TestSupport
import XCTest

/// A certificate and key written into the test's work directory.
struct TestCertificate {
    let certificatePath: String
    let keyPath: String
    var certificatePEM: String { (try? String(contentsOfFile: certificatePath, encoding: .utf8)) ?? "" }

    /// Adds v4 `security: tls` with this certificate to `stream`: the server's certificate files, or a
    /// client that sends SNI proxy.test and trusts any certificate.
    func secure(_ stream: inout [String: Any], server: Bool) {
        stream["security"] = "tls"
        stream["tlsSettings"] = server
            ? ["certificates": [["certificateFile": certificatePath, "keyFile": keyPath]]]
            : ["serverName": "proxy.test", "allowInsecure": true] as [String: Any]
    }
}

extension InteropTestCase {
    /// `openssl req -x509` with an EC key, for `dnsNames` (first one is also the CN).
    func makeSelfSignedCertificate(_ name: String, dnsNames: [String]) throws -> TestCertificate {
        let cert = workDir.appendingPathComponent("\(name).crt").path
        let key = workDir.appendingPathComponent("\(name).key").path
        let san = dnsNames.map { "DNS:\($0)" }.joined(separator: ",")
        let p = try launch("openssl-\(name)", "/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=\(dnsNames[0])",
            "-addext", "subjectAltName=\(san)",
        ])
        guard p.waitForExit(timeout: 20), FileManager.default.fileExists(atPath: cert) else {
            throw HarnessError("openssl req -x509 failed: \(p.exitDescription)")
        }
        return TestCertificate(certificatePath: cert, keyPath: key)
    }

    /// `vmessd run -c FILE --workers 2` on `config` (JSON text), ready when READY=1 arrived and the
    /// port accepts (`udp`: READY=1 alone, which comes once every worker has bound its sockets).
    func startVMessd(config: String, port: UInt16, name: String = "server-vmessd", udp: Bool = false) throws -> RunningServer {
        let path = try writeFile("\(name).json", config)
        let control = workDir.appendingPathComponent("\(name).ctl").path
        let notify = try NotifySocket(path: workDir.appendingPathComponent("\(name).notify").path)
        onTearDown { notify.close() }
        let process = try launch(name, try VMessdBinaries.vmessd(),
                                 ["run", "-c", path, "--workers", "2", "--control", control],
                                 environment: ["NOTIFY_SOCKET": notify.path])
        guard notify.waitFor("READY=1", timeout: Self.startupTimeout, stillAlive: { process.isRunning }) else {
            throw HarnessError("\(name) (\(process.exitDescription)) sent no READY=1 (got: \(notify.messages)) — logs follow")
        }
        if !udp { try waitUntilListening(process, port: port) }
        return RunningServer(kind: .vmessd, port: port, process: process)
    }

    /// The reference client (dokodemo-door → vmess outbound with `streamSettings`), `binary` defaulting
    /// to the Debian v2ray.
    func startV2RayClient(serverPort: UInt16, user: VMessTestUser, targetPort: UInt16,
                          streamSettings: [String: Any], binary: String? = nil,
                          name: String = "client-v2ray") throws -> RunningClient {
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let config = TransportConfigs.v2rayClient(dokodemoPort: dokodemo, targetPort: targetPort, socksPort: socks,
                                                  serverPort: serverPort, user: user, streamSettings: streamSettings)
        let path = try writeFile("\(name).json", config)
        let process = try launch(name, binary ?? v2rayPath, ["-config", path])
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: dokodemo, socksPort: socks, process: process)
    }

    /// An upstream example config (Tests/SharedTests/Fixtures/config, copies of
    /// shared/docs/upstream-examples) with its port and certificate paths replaced, nothing else.
    func upstreamExample(_ file: String, port: UInt16, certificate: TestCertificate? = nil) throws -> String {
        let url = VMessdBinaries.packageRoot.appendingPathComponent("Tests/SharedTests/Fixtures/config/\(file)")
        var text = try String(contentsOf: url, encoding: .utf8)
        let ports = ["\"port\": 443", "\"port\": 80"].filter { text.contains($0) }
        guard ports.count == 1 else { throw HarnessError("\(file): expected one inbound port, found \(ports)") }
        text = text.replacingOccurrences(of: ports[0], with: "\"port\": \(port)")
        if let certificate {
            text = text.replacingOccurrences(of: "/root/crt.crt", with: certificate.certificatePath)
                .replacingOccurrences(of: "/root/key.key", with: certificate.keyPath)
        }
        return text
    }
}

enum TransportConfigs {
    /// vmessd (or v2ray) server, v4: one vmess inbound on 127.0.0.1:port with `streamSettings`.
    static func serverV4(port: UInt16, user: VMessTestUser, streamSettings: [String: Any]) -> String {
        TestConfigs.json([
            "log": ["loglevel": "debug"],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in",
                "settings": ["clients": [user.json]],
                "streamSettings": streamSettings,
            ]],
            "outbounds": [["protocol": "freedom", "settings": [String: Any]()]],
        ])
    }

    /// Like TestConfigs.v2rayClient, with the vmess outbound's streamSettings.
    static func v2rayClient(dokodemoPort: UInt16, targetPort: UInt16, socksPort: UInt16, serverPort: UInt16,
                            user: VMessTestUser, streamSettings: [String: Any]) -> String {
        let base = TestConfigs.v2rayClient(dokodemoPort: dokodemoPort, targetPort: targetPort, socksPort: socksPort,
                                           serverPort: serverPort, user: user)
        var object = try! JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
        var outbounds = object["outbounds"] as! [[String: Any]]
        outbounds[0]["streamSettings"] = streamSettings
        object["outbounds"] = outbounds
        return TestConfigs.json(object)
    }
}
