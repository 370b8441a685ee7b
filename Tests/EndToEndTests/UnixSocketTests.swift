// Inbounds on Unix domain sockets (issue 9), behind real front ends:
//
//   v2ray ─ws─▶ nginx (proxy_pass http://unix:…, Upgrade headers) ─▶ vmessd ws inbound on /…/ws.sock,0666
//   vmessd client ─httpupgrade─▶ nginx ─▶ vmessd httpupgrade inbound on /…/up.sock
//   v2ray ─tls─▶ haproxy (mode tcp, send-proxy-v2) ─▶ vmessd tls inbound on /…/tls.sock (PROXY protocol)
//   v2ray ─domainsocket (abstract, padded or not)─▶ vmessd on "@name" / "@@name"
//   systemd-socket-activate -l /…/act.sock --fdname=TAG ─▶ vmessd adopts the Unix socket by name
//
// Every exchange is checked byte for byte; the socket outlives a reload (a stream opened before it
// goes on, a connection after it works, the file is the same inode) and its file goes at stop.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class UnixSocketTests: EndToEndTestCase {
    /// A short directory for socket files: sun_path holds 107 bytes, and the test's work directory
    /// can be longer than that once a file name is added.
    func socketDirectory() throws -> String {
        let dir = "/tmp/vmessd-unix-\(UUID().uuidString.prefix(8).lowercased())"
        guard mkdir(dir, 0o755) == 0 else { throw HarnessError("mkdir \(dir): errno \(errno)") }
        onTearDown { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func vmessInbound(listen: String, tag: String, user: VMessTestUser, stream: [String: Any] = [:]) -> [String: Any] {
        vmessInbound(listen: listen, tag: tag, users: [user], stream: stream)
    }

    func vmessInbound(listen: String, tag: String, users: [VMessTestUser], stream: [String: Any] = [:]) -> [String: Any] {
        ["listen": listen, "protocol": "vmess", "tag": tag, "settings": ["clients": users.map(\.serverJSON)], "streamSettings": stream]
    }

    func config(_ inbounds: [[String: Any]], accessLog: String? = nil) -> String {
        var log: [String: Any] = ["loglevel": "info"]
        if let accessLog { log["access"] = accessLog }
        return Self.json(["log": log, "inbounds": inbounds, "outbounds": [["protocol": "freedom"]]])
    }

    static func fileInfo(_ path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    func testNginxWebSocketToAUnixSocketAcrossReloadAndStop() throws {
        let echo = try makeEchoServer()
        let dir = try socketDirectory()
        let socket = "\(dir)/ws.sock"
        // A stale socket file from a vmessd that died: replaced, not an error.
        XCTAssertTrue(UnixSocketProbe.bindAndAbandon(socket), "could not leave a stale socket file")
        var users = [VMessTestUser("ws@example.com")]
        let stream: [String: Any] = ["network": "ws", "wsSettings": ["path": "/vm"]]
        let server = try startVMessd(config: config([vmessInbound(listen: "\(socket),0666", tag: "ws-in", user: users[0], stream: stream)]),
                                     port: 0, workers: 2, drainTimeout: 10)
        let info = try XCTUnwrap(Self.fileInfo(socket), "the socket file exists")
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o666, "the mode after the comma")
        var s = try status(server)
        XCTAssertEqual(s.listeners.map(\.address), ["unix:\(socket)"])
        XCTAssertEqual(s.listeners.map(\.sockets), [1], "one socket shared by both workers")

        let nginxPort = try startNginx(upstreamSocket: socket, path: "/vm")
        let client = try startClient(serverPort: nginxPort, user: users[0], targetPort: echo.port, stream: stream)
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(200 * 1024), label: "through nginx \(i)") }
        let stream0 = try LongStream(port: client.port, label: "before reload")
        XCTAssertTrue(stream0.waitForRounds(3), "\(stream0.state)")

        // A reload (a user added) keeps the socket: same inode, the open stream goes on, new connections work.
        users.append(VMessTestUser("second@example.com"))
        try writeFile((server.configPath as NSString).lastPathComponent,
                      config([vmessInbound(listen: "\(socket),0666", tag: "ws-in", users: users, stream: stream)]))
        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: 2, timeout: 30), "\(server.notify.messages)")
        XCTAssertEqual(Self.fileInfo(socket)?.st_ino, info.st_ino, "the same socket file after the reload")
        let second = try startClient(serverPort: nginxPort, user: users[1], targetPort: echo.port, stream: stream)
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: second.port, payload: randomData(200 * 1024), label: "after reload \(i)") }
        XCTAssertTrue(stream0.waitForRounds(3), "the stream opened before the reload: \(stream0.state)")
        let end = stream0.stop()
        XCTAssertNil(end.failure)
        s = try status(server)
        XCTAssertEqual(s.generation, 2)

        // Stop: the file goes.
        XCTAssertEqual(kill(server.pid, SIGTERM), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 20))
        XCTAssertEqual(server.process.exitStatus, 0)
        XCTAssertNil(Self.fileInfo(socket), "the socket file is removed at stop")
    }

    /// httpupgrade through nginx to a Unix socket. No reference binary here speaks httpupgrade
    /// (V2Ray 4.x predates it), so vmessd's own client is the peer, with nginx (a real upgrade-aware
    /// proxy) between them.
    func testNginxHTTPUpgradeToAUnixSocket() throws {
        let echo = try makeEchoServer()
        let dir = try socketDirectory()
        let socket = "\(dir)/up.sock"
        let user = VMessTestUser("up@example.com")
        let stream: [String: Any] = ["network": "httpupgrade", "httpupgradeSettings": ["path": "/up"]]
        _ = try startVMessd(config: config([vmessInbound(listen: socket, tag: "up-in", user: user, stream: stream)]), port: 0, workers: 2)
        let nginxPort = try startNginx(upstreamSocket: socket, path: "/up")
        let clientPort = try FreePort.tcp()
        _ = try startVMessd(config: Self.json([
            "inbounds": [["port": Int(clientPort), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                          "settings": ["address": "127.0.0.1", "port": Int(echo.port), "network": "tcp"]]],
            "outbounds": [["protocol": "vmess", "settings": ["vnext": [["address": "127.0.0.1", "port": Int(nginxPort), "users": [user.clientJSON]]]],
                           "streamSettings": stream]],
        ]), port: clientPort, workers: 1)
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: clientPort, payload: randomData(200 * 1024), label: "httpupgrade \(i)") }
        XCTAssertEqual(echo.connectionCount, 4)
    }

    func testAbstractSocketsFromTheReferenceDomainSocketTransport() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("abstract@example.com")
        let name = "vmessd-test-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try startVMessd(config: config([
            vmessInbound(listen: "@\(name)", tag: "plain", user: user),
            vmessInbound(listen: "@@\(name)", tag: "padded", user: user),
        ]), port: 0, workers: 2)
        // V2Ray's domainsocket transport dials "@name" (abstract) or the whole padded sun_path (padding).
        for padding in [false, true] {
            let client = try startClient(serverPort: 1, user: user, targetPort: echo.port, stream: [
                "network": "domainsocket", "dsSettings": ["path": name, "abstract": true, "padding": padding],
            ])
            for i in 0..<3 {
                try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(300 * 1024), label: "padding \(padding) \(i)")
            }
        }
        XCTAssertEqual(echo.connectionCount, 6)
    }

    /// haproxy passes TLS through to a Unix socket with a PROXY v2 header first: the client address
    /// the access log shows is the one the header carried (the Unix peer has none).
    func testHAProxyWithProxyProtocolAndTLSToAUnixSocket() throws {
        let dir = try socketDirectory()
        let check = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                 "-keyout", "\(dir)/k.pem", "-out", "\(dir)/c.pem", "-days", "2",
                                                 "-subj", "/CN=vmessd.test", "-addext", "subjectAltName=DNS:vmessd.test"])
        guard check.status == 0 else { throw XCTSkip("openssl req failed: \(check.stderr)") }
        let echo = try makeEchoServer()
        let user = VMessTestUser("pp@example.com")
        let socket = "\(dir)/tls.sock"
        let accessLog = workDir.appendingPathComponent("access.log").path
        _ = try startVMessd(config: config([vmessInbound(listen: socket, tag: "tls-in", user: user, stream: [
            "network": "tcp", "security": "tls", "sockopt": ["acceptProxyProtocol": true],
            "tlsSettings": ["certificates": [["certificateFile": "\(dir)/c.pem", "keyFile": "\(dir)/k.pem"]]],
        ])], accessLog: accessLog), port: 0, workers: 2)

        let port = try startHAProxy(server: "\(socket) send-proxy-v2")

        // The reference client leaves from 127.0.0.5: the address haproxy puts in the header.
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port, stream: [
            "network": "tcp", "security": "tls", "tlsSettings": ["serverName": "vmessd.test", "allowInsecure": true],
        ], sendThrough: "127.0.0.5")
        for i in 0..<3 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(256 * 1024), label: "tls via haproxy \(i)", timeout: 20)
        }
        try eventually("the access log names the client address the PROXY header carried") {
            let log = (try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? ""
            return log.contains("127.0.0.5:")
        }
    }

    /// systemd-socket-activate passes a Unix socket named like the inbound's tag: vmessd serves it
    /// (shared by its workers), keeps it across a reload and leaves its file alone (systemd's).
    func testSocketActivatedUnixSocketByName() throws {
        let activate = try Tool.socketActivate()
        let echo = try makeEchoServer()
        let dir = try socketDirectory()
        let socket = "\(dir)/act.sock"
        let user = VMessTestUser("act@example.com")
        // The config names another path: the name (FileDescriptorName= = tag) decides.
        let server = try startVMessd(config: config([vmessInbound(listen: "\(dir)/unused.sock", tag: "act-in", user: user)]),
                                     port: 0, workers: 2,
                                     prefix: [activate, "-l", socket, "--fdname=act-in", "-E", "NOTIFY_SOCKET"],
                                     trigger: { _ in try Self.connectOnce(socket, timeout: 10) })
        var s = try status(server)
        XCTAssertEqual(s.listeners.map(\.activated), [true], "\(s.listeners)")
        XCTAssertEqual(s.listeners.map(\.sockets), [1])
        XCTAssertNil(Self.fileInfo("\(dir)/unused.sock"), "vmessd opened no socket of its own")
        let client = try startClient(serverPort: 1, user: user, targetPort: echo.port,
                                     stream: ["network": "domainsocket", "dsSettings": ["path": socket]])
        for i in 0..<3 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "activated \(i)") }

        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: 2, timeout: 30))
        s = try status(server)
        XCTAssertEqual(s.generation, 2)
        XCTAssertEqual(s.listeners.map(\.activated), [true])
        for i in 0..<3 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after reload \(i)") }

        XCTAssertEqual(kill(server.pid, SIGTERM), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 20))
        XCTAssertEqual(server.process.exitStatus, 0)
    }

    /// `vmessd test` accepts the Unix forms and names what it refuses.
    func testConfigCheck() throws {
        let vmessd = try VMessdBinaries.vmessd()
        let user = VMessTestUser("check@example.com")
        let good = try writeFile("good.json", config([
            vmessInbound(listen: "/run/vmessd/in.sock,0660", tag: "a", user: user),
            vmessInbound(listen: "@vmessd", tag: "b", user: user),
            vmessInbound(listen: "@@vmessd", tag: "c", user: user, stream: ["network": "httpupgrade"]),
        ]))
        let ok = try run(vmessd, ["test", "-c", good])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("configuration OK"), ok.stdout)

        let bad = try writeFile("bad.json", config([vmessInbound(listen: "/run/in.sock,rw", tag: "a", user: user)]))
        let refused = try run(vmessd, ["test", "-c", bad])
        XCTAssertEqual(refused.status, 23)
        XCTAssertTrue(refused.stderr.contains("inbounds[0].listen") && refused.stderr.contains("\"rw\""), refused.stderr)
    }

    /// Connects to a Unix socket once (to make systemd-socket-activate start its program); bounded.
    static func connectOnce(_ path: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if UnixSocketProbe.connect(path) { return }
            usleep(50_000)
        }
        throw HarnessError("nothing listens on \(path) after \(Int(timeout)) s")
    }
}

/// Raw AF_UNIX calls for the tests (the test support library speaks TCP only).
enum UnixSocketProbe {
    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    static func connect(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return withAddress(path) { Glibc.connect(fd, $0, $1) } == 0
    }

    /// Binds a socket at `path` and closes it without unlinking: what a crashed server leaves.
    static func bindAndAbandon(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return withAddress(path) { bind(fd, $0, $1) } == 0
    }
}
