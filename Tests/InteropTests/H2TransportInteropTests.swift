// The gRPC ("gun") and h2 transports against real peers, 4 MiB echoed byte for byte each time:
//
//   v2ray 4.45.2 client ──grpc (h2c | tls, + 4 concurrent streams on its one connection)──▶ vmessd
//   sing-box 1.14 client ──grpc (tls | h2c; its gRPC-lite on Go's HTTP/2)──────────────▶ vmessd
//   Xray client (PyPI xray-core) ──grpc multiMode (TunMulti)─────────────────────────────▶ vmessd
//   vmessd client ──grpc (h2c | tls)──▶ v2ray 4.45.2 server;  ──grpc multiMode + tls──▶ vmessd
//   v2ray 4.34 client ──h2+tls──▶ vmessd;  vmessd client ──h2+tls──▶ v2ray 4.34 server
//
// and refusals seen with curl's HTTP/2 client: a wrong gRPC path gets grpc-status 12, a non-gRPC
// request 404, an h2 request for another host or path 404 — never a VMess exchange.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class H2TransportInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024
    let user = VMessTestUser(security: "aes-128-gcm")

    // MARK: - stream settings

    private func grpc(_ service: String, tls certificate: TestCertificate?, server: Bool, multiMode: Bool = false) -> [String: Any] {
        var settings: [String: Any] = ["serviceName": service]
        if multiMode { settings["multiMode"] = true }
        var s: [String: Any] = ["network": "grpc", "grpcSettings": settings]
        addTLS(&s, certificate, server: server)
        return s
    }

    private func h2(host: String, path: String, tls certificate: TestCertificate?, server: Bool) -> [String: Any] {
        var s: [String: Any] = ["network": "h2", "httpSettings": ["host": [host], "path": path]]
        addTLS(&s, certificate, server: server)
        return s
    }

    private func addTLS(_ s: inout [String: Any], _ certificate: TestCertificate?, server: Bool) {
        guard let certificate else { return }
        s["security"] = "tls"
        s["tlsSettings"] = server
            ? ["certificates": [["certificateFile": certificate.certificatePath, "keyFile": certificate.keyPath]]]
            : ["serverName": "proxy.test", "allowInsecure": true] as [String: Any]
    }

    private func certificate() throws -> TestCertificate {
        try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"])
    }

    // MARK: - real gRPC clients in front of vmessd

    func testV2Ray445GRPCClientWithoutTLS() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        try clientEcho(server: grpc("vmessd.Gun", tls: nil, server: true), client: grpc("vmessd.Gun", tls: nil, server: false),
                       binary: binary, label: "v2ray 4.45.2 grpc h2c")
    }

    func testV2Ray445GRPCClientTLSWithConcurrentStreams() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let cert = try certificate()
        try clientEcho(server: grpc("tunnel", tls: cert, server: true), client: grpc("tunnel", tls: cert, server: false),
                       binary: binary, label: "v2ray 4.45.2 grpc tls", concurrent: 4)
    }

    /// The same service configured in the v5 format (`transport: "grpc"`, `transportSettings`).
    func testV2Ray445GRPCClientAgainstAV5Config() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let config = TestConfigs.json([
            "inbounds": [["protocol": "vmess", "port": Int(port), "listen": "127.0.0.1", "settings": ["users": [user.id]],
                          "streamSettings": ["transport": "grpc", "transportSettings": ["serviceName": "five"]]]],
            "outbounds": [["protocol": "freedom"]],
        ])
        let vmessd = try startVMessd(config: config, port: port)
        let client = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                          streamSettings: grpc("five", tls: nil, server: false), binary: binary)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(Self.bulkSize), label: "v5 grpc 4 MiB echo")
        assertRunning(vmessd.process, client.process)
    }

    func testSingBoxGRPCClientTLS() throws {
        let cert = try certificate()
        try singBoxEcho(server: grpc("sb", tls: cert, server: true), tls: true)
    }

    func testSingBoxGRPCClientWithoutTLS() throws {
        try singBoxEcho(server: grpc("sb", tls: nil, server: true), tls: false)
    }

    func testXrayGRPCMultiModeClient() throws {
        let python = try XrayClient.requirePython()
        let cert = try certificate()
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user,
                                                                       streamSettings: grpc("multi", tls: cert, server: true)), port: port)
        let dokodemo = try FreePort.tcp()
        // This Xray refuses `allowInsecure`: it verifies against the test certificate instead.
        var client = grpc("multi", tls: cert, server: false, multiMode: true)
        client["tlsSettings"] = ["serverName": "proxy.test", "certificates": [["usage": "verify", "certificateFile": cert.certificatePath]]]
        let config = TransportConfigs.v2rayClient(dokodemoPort: dokodemo, targetPort: echo.port, socksPort: try FreePort.tcp(),
                                                  serverPort: port, user: user, streamSettings: client)
        let path = try writeFile("xray-client.json", config)
        let script = try writeFile("xray-runner.py", XrayClient.runner)
        let xray = try launch("client-xray", python, [script, path])
        try waitUntilListening(xray, port: dokodemo)
        try echoRoundTrip(port: dokodemo, payload: randomData(Self.bulkSize), label: "xray grpc multiMode 4 MiB echo")
        XCTAssertTrue(vmessd.process.output().contains("/multi/TunMulti"), "the Xray client did not call TunMulti")
        assertRunning(vmessd.process, xray)
    }

    // MARK: - vmessd's gRPC client in front of real servers

    func testVMessdGRPCToV2Ray445ServerWithoutTLS() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        try serverEcho(server: grpc("svc", tls: nil, server: true), client: grpc("svc", tls: nil, server: false),
                       binary: binary, label: "vmessd → v2ray 4.45.2 grpc h2c")
    }

    func testVMessdGRPCToV2Ray445ServerTLS() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let cert = try certificate()
        try serverEcho(server: grpc("svc", tls: cert, server: true), client: grpc("svc", tls: cert, server: false),
                       binary: binary, label: "vmessd → v2ray 4.45.2 grpc tls")
    }

    /// Also: the client's VMess connections (two in a row, then four at once) share HTTP/2
    /// connections, as V2Ray's client does: one per client worker (2), where a connection per VMess
    /// connection would be 6.
    func testVMessdGRPCMultiModeToVMessdTLSSharesConnections() throws {
        let cert = try certificate()
        try serverEcho(server: grpc("m", tls: cert, server: true), client: grpc("m", tls: cert, server: false, multiMode: true),
                       binary: nil, label: "vmessd → vmessd grpc multiMode tls", serverIsVMessd: true, parallel: 4)
    }

    /// Xray's gRPC keep-alive on vmessd's client: an idle connection whose server answers its PINGs
    /// stays; once the path goes silent (a relay that stops moving bytes, closing nothing) the
    /// client closes the connection after idle_timeout + health_check_timeout — well before the
    /// pool's own 30 s idle close — and the next VMess connection gets a fresh HTTP/2 connection.
    func testVMessdGRPCKeepAliveClosesADeadConnection() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let port = try FreePort.tcp()
        let serverProcess = try launch("server-v2ray", binary, ["-config", try writeFile("server-v2ray.json",
            TransportConfigs.serverV4(port: port, user: user, streamSettings: grpc("ka", tls: nil, server: true)))])
        try waitUntilListening(serverProcess, port: port)
        let relay = try FreezableTCPRelay(serverPort: port)
        onTearDown { relay.stop() }
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: relay.port, user: user)
        setup.streamSettings = ["network": "grpc", "grpcSettings": [
            "serviceName": "ka", "idle_timeout": 10, "health_check_timeout": 1, "permit_without_stream": true,
            "user_agent": "vmessd-test"]]
        let vmessd = try startVMessdClient(setup)
        try echoRoundTrip(fd: try SOCKS5Client.connect(proxyPort: vmessd.socksPort, targetPort: echo.port),
                          payload: randomData(64 * 1024), label: "grpc keep-alive first echo")
        XCTAssertEqual(relay.connections, 1)
        // Idle with no stream (permit_without_stream): the PING at 10 s is answered, the connection stays.
        Thread.sleep(forTimeInterval: 12)
        XCTAssertEqual(relay.closedByClient.count, 0, "a connection whose server answers was closed")
        relay.freeze()
        let frozenAt = Date()
        while relay.closedByClient.isEmpty, Date().timeIntervalSince(frozenAt) < 25 { usleep(200_000) }
        let closed = try XCTUnwrap(relay.closedByClient.first, "the client kept a connection that answers nothing")
        let after = closed.timeIntervalSince(frozenAt)
        // The next PING goes out 20 s after the echo (8 s after the freeze) and gets no answer within
        // 1 s; the pool's own idle close would come 30 s after the echo (18 s after the freeze).
        XCTAssertLessThan(after, 15, "closed \(after) s after the path went silent: not by the keep-alive")
        relay.thaw()
        try echoRoundTrip(fd: try SOCKS5Client.connect(proxyPort: vmessd.socksPort, targetPort: echo.port),
                          payload: randomData(64 * 1024), label: "grpc keep-alive after the dead connection")
        XCTAssertEqual(relay.connections, 2, "a new HTTP/2 connection after the dead one (from either client worker)")
        assertRunning(serverProcess, vmessd.process)
    }

    /// `vmessd ctl stats`' accepted connections of the server started as "server-vmessd", once the
    /// workers have published at least `atLeast` (they publish every second or so).
    private func acceptedConnections(atLeast: Int) throws -> Int {
        let ctl = workDir.appendingPathComponent("server-vmessd.ctl").path
        var accepted = -1
        for _ in 0..<20 {
            let p = try launch("ctl-stats", try VMessdBinaries.vmessd(), ["ctl", "--control", ctl, "stats"])
            XCTAssertTrue(p.waitForExit(timeout: 10))
            let text = p.output()
            if let range = text.range(of: #"accepted (\d+),"#, options: .regularExpression) {
                accepted = Int(text[range].dropFirst("accepted ".count).dropLast()) ?? -1
            }
            if accepted >= atLeast { break }
            usleep(300_000)
        }
        return accepted
    }

    // MARK: - h2 with v2ray 4.34, both ways

    func testV2RayH2ClientTLS() throws {
        let cert = try certificate()
        try clientEcho(server: h2(host: "proxy.test", path: "/h2", tls: cert, server: true),
                       client: h2(host: "proxy.test", path: "/h2", tls: cert, server: false),
                       binary: nil, label: "v2ray 4.34 h2 tls", concurrent: 3)
    }

    func testVMessdH2ToV2RayServerTLS() throws {
        let cert = try certificate()
        try serverEcho(server: h2(host: "proxy.test", path: "/h2", tls: cert, server: true),
                       client: h2(host: "proxy.test", path: "/h2", tls: cert, server: false),
                       binary: nil, label: "vmessd → v2ray 4.34 h2 tls")
    }

    func testVMessdH2ToVMessdTLS() throws {
        let cert = try certificate()
        try serverEcho(server: h2(host: "proxy.test", path: "/h2", tls: cert, server: true),
                       client: h2(host: "proxy.test", path: "/h2", tls: cert, server: false),
                       binary: nil, label: "vmessd → vmessd h2 tls", serverIsVMessd: true)
    }

    // MARK: - drain

    /// SIGTERM with a 60 s drain timeout while the real client holds its gRPC connection open, one
    /// stream busy: that stream keeps working, and once it ends vmessd exits at once (GOAWAY closed
    /// the client's connection) instead of waiting out the timeout for an idle HTTP/2 connection.
    func testStopDrainsGRPCConnections() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        var object = try JSONSerialization.jsonObject(with: Data(TransportConfigs.serverV4(
            port: port, user: user, streamSettings: grpc("drain", tls: nil, server: true)).utf8)) as! [String: Any]
        object["vmessd"] = ["drainTimeout": 60]
        let vmessd = try startVMessd(config: TestConfigs.json(object), port: port)
        let client = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                          streamSettings: grpc("drain", tls: nil, server: false), binary: binary)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(256 * 1024), label: "before the stop")

        let fd = try Sock.connect(port: client.dokodemoPort)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        func round(_ label: String) throws {
            let payload = randomData(64 * 1024)
            try Sock.writeAll(fd, payload, deadline: Date().addingTimeInterval(20), what: label)
            let r = try Sock.read(fd, count: payload.count, deadline: Date().addingTimeInterval(20), what: label)
            XCTAssertEqual(r.data, payload, "\(label): echo differs")
        }
        try round("open stream before the stop")
        XCTAssertEqual(kill(vmessd.process.pid, SIGTERM), 0)
        usleep(500_000)
        try round("open stream during the drain")
        XCTAssertTrue(vmessd.process.isRunning, "vmessd waits for the open stream")
        Glibc.shutdown(fd, Int32(SHUT_WR))
        let started = Date()
        XCTAssertTrue(vmessd.process.waitForExit(timeout: 15), "vmessd still running 15 s after its last gRPC stream ended")
        XCTAssertEqual(vmessd.process.exitStatus, 0, vmessd.process.exitDescription)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertTrue(vmessd.process.output().contains("why=drained"), "the workers drained rather than timed out")
    }

    // MARK: - refusals

    func testWrongRequestsGetHTTP2ErrorsAndNoVMess() throws {
        let curl = try Tool.require("/usr/bin/curl", install: "apt-get install curl")
        let grpcPort = try FreePort.tcp()
        let grpcServer = try startVMessd(config: TransportConfigs.serverV4(port: grpcPort, user: user,
                                                                           streamSettings: grpc("svc", tls: nil, server: true)),
                                         port: grpcPort, name: "server-grpc")
        let cert = try certificate()
        let h2Port = try FreePort.tcp()
        let h2Server = try startVMessd(config: TransportConfigs.serverV4(port: h2Port, user: user,
                                                                         streamSettings: h2(host: "proxy.test", path: "/h2", tls: cert, server: true)),
                                       port: h2Port, name: "server-h2")

        /// curl's response head (status line and headers, trailers included), lower-cased.
        func request(_ name: String, _ arguments: [String]) throws -> String {
            let out = workDir.appendingPathComponent("\(name).head").path
            let p = try launch("curl-\(name)", curl, ["-sS", "--max-time", "10", "-o", "/dev/null", "-D", out] + arguments)
            guard p.waitForExit(timeout: 20) else { throw HarnessError("curl \(name) did not finish") }
            return ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").lowercased()
        }
        let base = "http://127.0.0.1:\(grpcPort)"
        let wrongService = try request("wrong-service", ["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
                                                          "--data-binary", "x", "\(base)/other/Tun"])
        XCTAssertTrue(wrongService.contains("http/2 200") && wrongService.contains("grpc-status: 12"), wrongService)
        let notGRPC = try request("not-grpc", ["--http2-prior-knowledge", "\(base)/svc/Tun"])
        XCTAssertTrue(notGRPC.hasPrefix("http/2 404"), notGRPC)
        let h2Base = "https://proxy.test:\(h2Port)"
        let resolve = ["--resolve", "proxy.test:\(h2Port):127.0.0.1", "-k", "--http2"]
        let wrongPath = try request("wrong-path", resolve + ["-X", "PUT", "\(h2Base)/other"])
        XCTAssertTrue(wrongPath.hasPrefix("http/2 404"), wrongPath)
        let wrongHost = try request("wrong-host", ["-k", "--http2", "-X", "PUT", "https://127.0.0.1:\(h2Port)/h2"])
        XCTAssertTrue(wrongHost.hasPrefix("http/2 404"), wrongHost)

        // A right request with garbage instead of VMess: the stream is answered (200) and then closed.
        let garbage = try request("garbage", ["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
                                              "--data-binary", "@/dev/null", "\(base)/svc/Tun"])
        XCTAssertTrue(garbage.contains("http/2 200"), garbage)

        // The servers still serve real clients.
        let echo = try makeEchoServer()
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let client = try startV2RayClient(serverPort: grpcPort, user: user, targetPort: echo.port,
                                          streamSettings: grpc("svc", tls: nil, server: false), binary: binary)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(64 * 1024), label: "grpc after refusals")
        assertRunning(grpcServer.process, h2Server.process, client.process)
    }

    // MARK: - harness

    /// A reference client (v2ray 4.34 unless `binary`) → vmessd → echo; `concurrent` flows at once
    /// through the client's one connection, each with the full payload.
    private func clientEcho(server: [String: Any], client: [String: Any], binary: String?, label: String,
                            concurrent: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: server), port: port)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port, streamSettings: client, binary: binary)
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(Self.bulkSize), label: "\(label) 4 MiB echo")
        if concurrent > 1 {
            try parallelEchoes(port: v2ray.dokodemoPort, count: concurrent, size: 1024 * 1024, label: label)
        }
        assertRunning(vmessd.process, v2ray.process, file: file, line: line)
    }

    private func parallelEchoes(port: UInt16, count: Int, size: Int, label: String) throws {
        let go = DispatchSemaphore(value: 0)
        var tasks: [BackgroundTask<Void>] = []
        for i in 0..<count {
            tasks.append(BackgroundTask("h2-flow-\(i)") { [self] in
                let fd = try Sock.connect(port: port)
                _ = go.wait(timeout: .now() + 20)
                try echoRoundTrip(fd: fd, payload: randomData(size), label: "\(label) flow \(i) of \(count)")
            })
        }
        for _ in 0..<count { go.signal() }
        let failures = failures(of: tasks)
        XCTAssert(failures.isEmpty, "\(label): \(failures.count) of \(count) concurrent flows failed:\n" + failures.joined(separator: "\n"))
    }

    /// vmessd's client (socks in, vmess out with `client`) → a server (v2ray 4.34, `binary`, or
    /// vmessd) → echo.
    private func serverEcho(server: [String: Any], client: [String: Any], binary: String?, label: String,
                            serverIsVMessd: Bool = false, parallel: Int = 0,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let port = try FreePort.tcp()
        let config = TransportConfigs.serverV4(port: port, user: user, streamSettings: server)
        let serverProcess: ManagedProcess
        if serverIsVMessd {
            serverProcess = try startVMessd(config: config, port: port).process
        } else {
            let path = try writeFile("server-v2ray.json", config)
            serverProcess = try launch("server-v2ray", binary ?? v2rayPath, ["-config", path])
            try waitUntilListening(serverProcess, port: port)
        }
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: port, user: user)
        setup.streamSettings = client
        let vmessd = try startVMessdClient(setup)
        let fd = try SOCKS5Client.connect(proxyPort: vmessd.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize), label: "\(label) 4 MiB echo")
        // A second connection: a fresh HTTP/2 connection and stream.
        // The harness's readiness probes are accepted connections too: counted before the traffic.
        let before = parallel > 0 ? try acceptedConnections(atLeast: 1) : 0
        let again = try SOCKS5Client.connect(proxyPort: vmessd.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: again, payload: randomData(256 * 1024), label: "\(label) second connection")
        if parallel > 0 {
            var tasks: [BackgroundTask<Void>] = []
            for i in 0..<parallel {
                tasks.append(BackgroundTask("client-flow-\(i)") { [self] in
                    let fd = try SOCKS5Client.connect(proxyPort: vmessd.socksPort, targetPort: echo.port)
                    try echoRoundTrip(fd: fd, payload: randomData(512 * 1024), label: "\(label) flow \(i) of \(parallel)")
                })
            }
            let failures = failures(of: tasks)
            XCTAssert(failures.isEmpty, "\(label): \(failures.count) of \(parallel) concurrent flows failed:\n" + failures.joined(separator: "\n"),
                      file: file, line: line)
            let after = try acceptedConnections(atLeast: before + 1)
            // The first echo's connection is already counted in `before` (or its worker's pool is
            // reused): at most one new connection per client worker.
            XCTAssertLessThanOrEqual(after - before, 2, "\(label): \(after - before) new connections for \(parallel + 1) VMess connections",
                                     file: file, line: line)
        }
        assertRunning(serverProcess, vmessd.process, file: file, line: line)
    }

    /// sing-box (socks in, vmess out over grpc) → vmessd → echo, through its socks port.
    private func singBoxEcho(server: [String: Any], tls: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let binary = try SingBoxClient.binary()
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: server), port: port)
        let socks = try FreePort.tcp()
        var outbound: [String: Any] = ["type": "vmess", "tag": "vmess-out", "server": "127.0.0.1", "server_port": Int(port),
                                       "uuid": user.id, "security": user.security, "alter_id": 0,
                                       "transport": ["type": "grpc", "service_name": "sb"]]
        if tls { outbound["tls"] = ["enabled": true, "server_name": "proxy.test", "insecure": true] }
        let config = TestConfigs.json([
            "log": ["level": "warn"],
            "inbounds": [["type": "socks", "tag": "socks-in", "listen": "127.0.0.1", "listen_port": Int(socks)]],
            "outbounds": [outbound],
        ])
        let path = try writeFile("sing-box-grpc.json", config)
        let process = try launch("client-sing-box-grpc", binary, ["run", "-c", path])
        try waitUntilListening(process, port: socks)
        let fd = try SOCKS5Client.connect(proxyPort: socks, targetPort: echo.port)
        // sing-box's gRPC client (gun-lite) drops the rest of the download when its socks client
        // half-closes, whatever the server (seen with the v2ray 4.45.2 server too).
        try echoThenClose(fd: fd, payload: randomData(Self.bulkSize), label: "sing-box grpc\(tls ? "+tls" : "") 4 MiB echo")
        try parallelEchoesThroughSOCKS(socksPort: socks, targetPort: echo.port, count: 3, size: 512 * 1024, label: "sing-box grpc")
        assertRunning(vmessd.process, process, file: file, line: line)
    }

    private func parallelEchoesThroughSOCKS(socksPort: UInt16, targetPort: UInt16, count: Int, size: Int, label: String) throws {
        var tasks: [BackgroundTask<Void>] = []
        for i in 0..<count {
            tasks.append(BackgroundTask("sb-flow-\(i)") { [self] in
                let fd = try SOCKS5Client.connect(proxyPort: socksPort, targetPort: targetPort)
                try echoThenClose(fd: fd, payload: randomData(size), label: "\(label) flow \(i) of \(count)")
            })
        }
        let failures = failures(of: tasks)
        XCTAssert(failures.isEmpty, "\(label): \(failures.count) of \(count) concurrent flows failed:\n" + failures.joined(separator: "\n"))
    }
}
