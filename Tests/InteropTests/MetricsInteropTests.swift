// The Prometheus endpoint (`vmessd.metrics`) with real peers: the reference v2ray client moves bytes
// through vmessd, a garbage handshake is rejected, a worker is killed and the config reloaded; then
// Python's prometheus_client parser (the official client library's) reads /metrics and every value
// must match what happened exactly. A real Prometheus server (Debian's) scrapes it too.

import Foundation
import Glibc
import TestSupport
import XCTest

final class MetricsInteropTests: InteropTestCase {
    /// A running vmessd with its endpoint, and what the tests move bytes with.
    struct Setup {
        /// The endpoint's port, and a scraper of it.
        let metricsPort: UInt16
        let workDir: URL
        var metrics: MetricsScraper { MetricsScraper(port: metricsPort, workDir: workDir) }
        let server: RunningServer
        let alice: VMessTestUser
        let echo: EchoServer
    }

    /// vmess inbound "vmess-in" (alice@example.com), freedom "direct", no `stats`: the metrics count
    /// whatever the API's switches say.
    func config(port: UInt16, metricsPort: UInt16, alice: VMessTestUser, userLabels: Bool, host: String = "127.0.0.1") -> String {
        var user = alice.json
        user["email"] = "alice@example.com"
        return TestConfigs.json([
            "log": ["loglevel": "info"],
            "inbounds": [["listen": "127.0.0.1", "port": Int(port), "protocol": "vmess", "tag": "vmess-in",
                          "settings": ["clients": [user]]]],
            "outbounds": [["protocol": "freedom", "tag": "direct"]],
            "vmessd": ["metrics": ["listen": "\(host):\(metricsPort)", "userLabels": userLabels]],
        ])
    }

    func start(userLabels: Bool = true) throws -> Setup {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's own endpoint") }
        let port = try FreePort.tcp()
        var metricsPort = try FreePort.tcp()
        while metricsPort == port { metricsPort = try FreePort.tcp() }
        let alice = VMessTestUser(security: "aes-128-gcm")
        let server = try startServer(.vmessd, port: port,
                                     config: config(port: port, metricsPort: metricsPort, alice: alice, userLabels: userLabels))
        try waitForTCPPort(metricsPort, timeout: Self.startupTimeout, stillAlive: { server.process.isRunning })
        return Setup(metricsPort: metricsPort, workDir: workDir, server: server, alice: alice, echo: try makeEchoServer())
    }

    /// Polls until `condition` holds on a fresh scrape (workers publish once a second); the last
    /// scrape is returned either way, and a miss fails with it.
    @discardableResult
    func eventually(_ s: Setup, _ what: String, timeout: TimeInterval = 10,
                    _ condition: (MetricsScraper.Scrape) -> Bool) throws -> MetricsScraper.Scrape {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let scrape = try s.metrics.scrape()
            if condition(scrape) { return scrape }
            guard Date() < deadline else {
                XCTFail("\(what): not within \(Int(timeout)) s; last scrape: \(scrape.samples.filter { $0.key.hasPrefix("vmessd_") }.sorted { $0.key < $1.key })")
                return scrape
            }
            usleep(200_000)
        }
    }

    /// 64 bytes no user's key opens: rejected as an unknown user (and drained, then closed).
    func sendGarbageHandshake(port: UInt16) throws {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        try Sock.writeAll(fd, randomData(64), deadline: Date().addingTimeInterval(5))
    }

    func workerPIDs(_ server: RunningServer) -> [pid_t] {
        let text = (try? String(contentsOfFile: "/proc/\(server.process.pid)/task/\(server.process.pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { pid_t($0) }
    }

    func testMetricsMatchTheBytesMovedAndTheRejectionsCaused() throws {
        let s = try start()
        // The harness's readiness probe connected to the inbound once (waitUntilListening: one
        // successful connect), published within a second: that comes before the test's own.
        let before = 1.0
        try eventually(s, "the readiness probe's connection is counted") { m in
            m["vmessd_connections_accepted_total"] == before && m["vmessd_inbound_connections_accepted_total", ["inbound": "vmess-in"]] == before
        }
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        let sizes = [100_000, 31_337, 1]
        for (i, size) in sizes.enumerated() {
            try echoRoundTrip(port: client.dokodemoPort, payload: randomData(size), label: "transfer \(i)")
        }
        let total = Double(sizes.reduce(0, +))
        try sendGarbageHandshake(port: s.server.port)

        let up = ["direction": "up"], down = ["direction": "down"]
        let alice = ["user": "alice@example.com"]
        func framed(_ value: Double?) -> Bool { value.map { $0 > total && $0 < total + total / 10 + 4096 } ?? false }
        let scrape = try eventually(s, "every figure matches what happened") { m in
            m["vmessd_traffic_bytes_total", up] == total && m["vmessd_traffic_bytes_total", down] == total
                && m["vmessd_user_traffic_bytes_total", alice.merging(up) { a, _ in a }] == total
                && m["vmessd_user_traffic_bytes_total", alice.merging(down) { a, _ in a }] == total
                && m["vmessd_outbound_traffic_bytes_total", ["outbound": "direct", "direction": "up"]] == total
                && m["vmessd_outbound_traffic_bytes_total", ["outbound": "direct", "direction": "down"]] == total
                && framed(m["vmessd_inbound_traffic_bytes_total", ["inbound": "vmess-in", "direction": "up"]])
                && framed(m["vmessd_inbound_traffic_bytes_total", ["inbound": "vmess-in", "direction": "down"]])
                && m["vmessd_handshake_rejections_total", ["reason": "unknown_user"]] == 1
                // Three tunnelled connections and the garbage one, all closed by now.
                && m["vmessd_inbound_connections_accepted_total", ["inbound": "vmess-in"]] == before + 4
                && m["vmessd_inbound_connections_active", ["inbound": "vmess-in"]] == 0
                && m["vmessd_user_connections_accepted_total", alice] == 3
                && m["vmessd_outbound_connections_opened_total", ["outbound": "direct"]] == 3
                && m["vmessd_handshake_clock_skew_seconds_count", ["outcome": "accepted"]] == 3
        }
        XCTAssertEqual(scrape.status, 200)
        XCTAssertEqual(scrape.contentType, "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(scrape["vmessd_connections_accepted_total"], before + 4)
        XCTAssertEqual(scrape["vmessd_connections_active"], 0)
        XCTAssertEqual(scrape["vmessd_user_connections_active", alice], 0)
        XCTAssertEqual(scrape["vmessd_outbound_connections_active", ["outbound": "direct"]], 0)
        // The client's clock is this machine's: every accepted handshake is within a second or two.
        XCTAssertEqual(scrape["vmessd_handshake_clock_skew_seconds_bucket", ["outcome": "accepted", "le": "2"]], 3)
        XCTAssertEqual(scrape["vmessd_handshake_clock_skew_seconds_count", ["outcome": "rejected"]], 0)
        XCTAssertEqual(scrape["vmessd_workers", ["state": "ready"]], 2)
        XCTAssertEqual(scrape["vmessd_draining_connections"], 0)
        XCTAssertEqual(scrape["vmessd_generation"], 1)
        let lags = scrape.samples.filter { $0.key.hasPrefix("vmessd_worker_event_loop_lag_seconds{") }
        XCTAssertEqual(lags.count, 2, "one lag series per worker: \(lags)")
        XCTAssertTrue(lags.values.allSatisfy { $0 >= 0 && $0 < 1 }, "an idle loop is not a second late: \(lags)")

        // Anything but GET /metrics.
        XCTAssertEqual(try s.metrics.scrape(path: "/").status, 404)
        XCTAssertEqual(try s.metrics.scrape(path: "/metrics/x").status, 404)
        XCTAssertEqual(try s.metrics.scrape(method: "POST").status, 405)
        XCTAssertEqual(try s.metrics.scrape(path: "/metrics?debug=1").status, 200)

        // A worker killed: its totals live on (the supervisor retires them), the restart is counted
        // with its cause; then a reload (new generation): still the same totals, the reload counted.
        let pids = workerPIDs(s.server)
        XCTAssertEqual(pids.count, 2, "workers of pid \(s.server.process.pid)")
        kill(try XCTUnwrap(pids.first), SIGKILL)
        try eventually(s, "the restart is counted by cause") { m in
            m["vmessd_worker_restarts_total", ["cause": "signal", "code": "SIGKILL"]] == 1 && m["vmessd_workers", ["state": "ready"]] == 2
        }
        kill(s.server.process.pid, SIGHUP)
        let after = try eventually(s, "the reload is counted and the totals carry on") { m in
            m["vmessd_reloads_total", ["result": "ok"]] == 1 && m["vmessd_generation"] == 2
                && m["vmessd_workers", ["state": "draining"]] == 0 && m["vmessd_workers", ["state": "ready"]] == 2
        }
        XCTAssertEqual(after["vmessd_reload_duration_seconds_count", ["result": "ok"]], 1)
        XCTAssertEqual(after["vmessd_traffic_bytes_total", up], total)
        XCTAssertEqual(after["vmessd_user_traffic_bytes_total", alice.merging(up) { a, _ in a }], total)
        XCTAssertEqual(after["vmessd_handshake_rejections_total", ["reason": "unknown_user"]], 1)
        XCTAssertEqual(after["vmessd_inbound_connections_accepted_total", ["inbound": "vmess-in"]], before + 4)
        XCTAssertEqual(after.samples.filter { $0.key.hasPrefix("vmessd_worker_event_loop_lag_seconds{") }.count, 2,
                       "the old generation's series are gone")
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(10), label: "after the reload")
        try eventually(s, "the new generation counts on top") { m in m["vmessd_traffic_bytes_total", up] == total + 10 }
        assertRunning(s.server.process, client.process)
    }

    func testUserLabelsAreOffByDefault() throws {
        let s = try start(userLabels: false)
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(5000), label: "transfer")
        let scrape = try eventually(s, "the traffic is counted") { m in m["vmessd_traffic_bytes_total", ["direction": "up"]] == 5000 }
        XCTAssertEqual(scrape.samples.keys.filter { $0.contains("user=") }, [], "no per-user series without userLabels")
        XCTAssertEqual(scrape["vmessd_outbound_traffic_bytes_total", ["outbound": "direct", "direction": "up"]], 5000)
    }

    /// A client that dribbles its request is cut off at the request deadline, a body over the bound
    /// gets 413, and meanwhile scrapes are answered.
    func testSlowAndOversizedRequestsAreBounded() throws {
        let s = try start()
        let slow = try Sock.connect(port: s.metricsPort)
        defer { close(slow) }
        let started = Date()
        try Sock.writeAll(slow, Data("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8), deadline: started.addingTimeInterval(5))
        var closedAfter: TimeInterval?
        for i in 0..<20 {
            // A header line every second keeps the idle timeout away; only the deadline ends it.
            if (try? Sock.writeAll(slow, Data("X-\(i): y\r\n".utf8), deadline: Date().addingTimeInterval(2))) == nil {
                closedAfter = Date().timeIntervalSince(started)
                break
            }
            XCTAssertEqual(try s.metrics.scrape().status, 200, "scrapes are answered beside a slow client")
            var byte: UInt8 = 0
            var pfd = pollfd(fd: slow, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 1000) > 0, recv(slow, &byte, 1, 0) <= 0 {
                closedAfter = Date().timeIntervalSince(started)
                break
            }
        }
        let after = try XCTUnwrap(closedAfter, "the dribbling client was never cut off")
        XCTAssertGreaterThan(after, 9, "not before the 10 s request deadline")
        XCTAssertLessThan(after, 16, "at the request deadline, not at the idle timeout")

        let big = try Sock.connect(port: s.metricsPort)
        defer { close(big) }
        try Sock.writeAll(big, Data("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".utf8) + randomData(8192),
                          deadline: Date().addingTimeInterval(5))
        let answer = try Sock.read(big, count: 64, deadline: Date().addingTimeInterval(5))
        XCTAssertTrue(String(decoding: answer.data, as: UTF8.self).hasPrefix("HTTP/1.1 413"), String(decoding: answer.data, as: UTF8.self))
        assertRunning(s.server.process)
    }

    /// A reload that changes `listen` moves the endpoint: onto the wildcard address with the same port
    /// (the old socket must go first), then to another port (the old one stops answering).
    func testReloadMovesTheEndpoint() throws {
        let s = try start()
        let path = workDir.appendingPathComponent("server-vmessd.json")
        func reload(host: String, metricsPort: UInt16, generation: Double) throws {
            try config(port: s.server.port, metricsPort: metricsPort, alice: s.alice, userLabels: true, host: host)
                .write(to: path, atomically: true, encoding: .utf8)
            kill(s.server.process.pid, SIGHUP)
            let moved = Setup(metricsPort: metricsPort, workDir: workDir, server: s.server, alice: s.alice, echo: s.echo)
            try eventually(moved, "generation \(Int(generation)) serves metrics on \(host):\(metricsPort)", timeout: 20) { m in
                m["vmessd_generation"] == generation && m["vmessd_reloads_total", ["result": "ok"]] == generation - 1
            }
        }
        try reload(host: "0.0.0.0", metricsPort: s.metricsPort, generation: 2)
        XCTAssertTrue(s.server.process.output().contains("address=0.0.0.0:\(s.metricsPort)"), "the wildcard socket is the one answering")
        var other = try FreePort.tcp()
        while other == s.metricsPort || other == s.server.port { other = try FreePort.tcp() }
        try reload(host: "127.0.0.1", metricsPort: other, generation: 3)
        XCTAssertThrowsError(try Sock.connect(port: s.metricsPort), "the old address no longer answers")
        assertRunning(s.server.process)
    }

    /// Debian's Prometheus server scrapes the endpoint like a deployment would and answers a query.
    func testARealPrometheusScrapesIt() throws {
        let binary = try Tool.require("/usr/bin/prometheus", install: "apt-get install prometheus; scripts/install-deps.sh does")
        let s = try start()
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(12_345), label: "transfer")
        try eventually(s, "the traffic is counted") { m in m["vmessd_traffic_bytes_total", ["direction": "up"]] == 12_345 }

        let webPort = try FreePort.tcp()
        let configPath = try writeFile("prometheus.yml", """
            global: {scrape_interval: 1s, scrape_timeout: 1s}
            scrape_configs:
              - job_name: vmessd
                static_configs: [{targets: ["127.0.0.1:\(s.metricsPort)"]}]
            """)
        let prometheus = try launch("prometheus", binary, [
            "--config.file=\(configPath)", "--storage.tsdb.path=\(workDir.appendingPathComponent("tsdb").path)",
            "--web.listen-address=127.0.0.1:\(webPort)",
        ])
        try waitUntilListening(prometheus, port: webPort)
        let query = "vmessd_user_traffic_bytes_total{user=\"alice@example.com\",direction=\"up\"}"
        let url = "http://127.0.0.1:\(webPort)/api/v1/query?query=" + query.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let deadline = Date().addingTimeInterval(30)
        var last = ""
        while Date() < deadline {
            let result = try APIClient.run("/usr/bin/env", ["python3", "-c",
                "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())", url])
            last = result.output
            // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[t,"12345"]}]}}
            if last.contains("\"12345\"") && last.contains("\"job\":\"vmessd\"") { break }
            usleep(500_000)
        }
        XCTAssertTrue(last.contains("\"12345\""), "Prometheus did not get the value: \(last)")
        // The scrape itself was healthy: `up` is 1.
        let up = try APIClient.run("/usr/bin/env", ["python3", "-c",
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
            "http://127.0.0.1:\(webPort)/api/v1/query?query=up"])
        XCTAssertTrue(up.output.contains("\"1\""), up.output)
        assertRunning(s.server.process, client.process, prometheus)
    }
}
