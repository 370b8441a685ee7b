// vmessd as the client side: its config (socks, http and dokodemo-door inbounds in front of a vmess
// outbound), how to start it, and the local clients the tests speak through it (SOCKS5 CONNECT with or
// without a password, HTTP CONNECT, plain HTTP through the proxy).

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What the vmessd client under test runs.
struct VMessdClientSetup {
    struct Server {
        var port: UInt16
        var users: [VMessTestUser]
        var address = "127.0.0.1"
    }

    var servers: [Server]
    /// SOCKS5 username/password accounts; nil = no authentication.
    var socksAccounts: [(user: String, pass: String)]?
    var httpAccounts: [(user: String, pass: String)]?
    /// The dokodemo-door target port and network ("tcp", "udp", "tcp,udp"); nil = no dokodemo-door.
    var dokodemoTarget: (port: UInt16, network: String)?
    /// Outbound mux concurrency; nil = mux off.
    var mux: Int?
    var streamSettings: [String: Any]?
    /// Write a v5 file: the outbound in the SimplifiedConfig shape ({address, port, uuid}), the socks
    /// inbound as {address, udpEnabled}, `log` as v5 objects (no socks or http accounts in this form).
    var v5 = false

    init(servers: [Server]) { self.servers = servers }
    init(serverPort: UInt16, user: VMessTestUser) { servers = [Server(port: serverPort, users: [user])] }
}

struct RunningVMessdClient {
    let socksPort: UInt16
    let httpPort: UInt16
    /// 0 when the setup has no dokodemo-door.
    let dokodemoPort: UInt16
    let process: ManagedProcess
}

enum ClientConfigs {
    static func vmessdClient(_ setup: VMessdClientSetup, socksPort: UInt16, httpPort: UInt16, dokodemoPort: UInt16) -> String {
        var socks: [String: Any] = ["udp": true, "ip": "127.0.0.1"]
        if let accounts = setup.socksAccounts {
            socks["auth"] = "password"
            socks["accounts"] = accounts.map { ["user": $0.user, "pass": $0.pass] }
        } else {
            socks["auth"] = "noauth"
        }
        var http: [String: Any] = [:]
        if let accounts = setup.httpAccounts {
            http["accounts"] = accounts.map { ["user": $0.user, "pass": $0.pass] }
        }
        if setup.v5 { socks = ["udpEnabled": true, "address": "127.0.0.1"] }
        var inbounds: [[String: Any]] = [
            ["port": Int(socksPort), "listen": "127.0.0.1", "protocol": "socks", "tag": "socks-in", "settings": socks],
            ["port": Int(httpPort), "listen": "127.0.0.1", "protocol": "http", "tag": "http-in", "settings": http],
        ]
        if let target = setup.dokodemoTarget {
            inbounds.append(["port": Int(dokodemoPort), "listen": "127.0.0.1", "protocol": "dokodemo-door", "tag": "door-in",
                             "settings": ["address": "127.0.0.1", "port": Int(target.port), "network": target.network]])
        }
        var outbound: [String: Any] = ["protocol": "vmess", "tag": "proxy"]
        if setup.v5 {
            let server = setup.servers[0]
            outbound["settings"] = ["address": server.address, "port": Int(server.port), "uuid": server.users[0].id]
        } else {
            outbound["settings"] = ["vnext": setup.servers.map { s -> [String: Any] in
                ["address": s.address, "port": Int(s.port), "users": s.users.map(\.json)]
            }]
        }
        if let mux = setup.mux { outbound["mux"] = ["enabled": true, "concurrency": mux] }
        if let stream = setup.streamSettings { outbound["streamSettings"] = stream }
        return TestConfigs.json([
            "log": setup.v5 ? ["error": ["level": "Debug"]] : ["loglevel": "debug"],
            // Generous one-direction timers, as for the reference client (TestConfigs.v2rayClient): the
            // tests half-close after sending and check data, not latency.
            "policy": ["levels": ["0": ["handshake": 10, "connIdle": 300, "uplinkOnly": 20, "downlinkOnly": 20]]],
            "inbounds": inbounds,
            "outbounds": [outbound],
        ])
    }
}

extension InteropTestCase {
    /// An echo target behind the real V2Ray server (aes-128-gcm), and vmessd as the client in front
    /// of it with a dokodemo-door to the echo target.
    func startDokodemoThroughVMessdClient() throws -> (EchoServer, RunningServer, RunningVMessdClient) {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.dokodemoTarget = (echo.port, "tcp")
        return (echo, server, try startVMessdClient(setup))
    }

    /// `vmessd run` as a client; ready once READY=1 arrived and the socks port accepts (the
    /// dokodemo-door port is never probed: a probe would be relayed to the target).
    func startVMessdClient(_ setup: VMessdClientSetup, name: String = "client-vmessd") throws -> RunningVMessdClient {
        var ports: [UInt16] = []
        while ports.count < 3 {
            let p = try FreePort.tcp()
            if !ports.contains(p) { ports.append(p) }
        }
        let config = ClientConfigs.vmessdClient(setup, socksPort: ports[0], httpPort: ports[1], dokodemoPort: ports[2])
        let running = try startVMessd(config: config, port: ports[0], name: name)
        return RunningVMessdClient(socksPort: ports[0], httpPort: ports[1],
                                   dokodemoPort: setup.dokodemoTarget == nil ? 0 : ports[2], process: running.process)
    }
}

/// A SOCKS5 client for CONNECT (RFC 1928, RFC 1929 for the password).
extension InteropTestCase {
    /// Through the vmessd client's SOCKS port to the echo server: one `bulk`-byte echo, then
    /// `shortConnections` small ones, each on a connection of its own, byte for byte.
    func echoThroughSOCKS(_ client: RunningVMessdClient, targetPort: UInt16, bulk: Int, shortConnections: Int,
                          label: String) throws {
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: targetPort)
        try echoRoundTrip(fd: fd, payload: randomData(bulk), label: "\(label) \(bulk)-byte echo")
        for i in 0..<shortConnections {
            let short = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: targetPort)
            try echoRoundTrip(fd: short, payload: randomData(1000 + i), label: "\(label) short connection \(i)")
        }
    }
}

enum SOCKS5Client {
    enum Outcome: Equatable { case connected, refused(step: String, code: UInt8) }

    /// Connects through the proxy to 127.0.0.1:`targetPort` (or `host`), returning the socket once the
    /// proxy said yes. Throws `SocketError.unexpected` naming the reply when it said no.
    static func connect(proxyPort: UInt16, targetPort: UInt16, host: String? = nil,
                        auth: (user: String, pass: String)? = nil, timeout: TimeInterval = 10) throws -> Int32 {
        let (fd, outcome) = try attempt(proxyPort: proxyPort, targetPort: targetPort, host: host, auth: auth, timeout: timeout)
        guard outcome == .connected else {
            close(fd)
            throw SocketError.unexpected("socks5: \(outcome)")
        }
        return fd
    }

    /// The whole exchange; the socket is returned open either way (the caller closes it).
    static func attempt(proxyPort: UInt16, targetPort: UInt16, host: String? = nil,
                        auth: (user: String, pass: String)?, timeout: TimeInterval) throws -> (Int32, Outcome) {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try Sock.connect(port: proxyPort)
        Sock.setTimeouts(fd, seconds: 0.25)
        do {
            try Sock.writeAll(fd, Data([0x05, 0x01, auth == nil ? 0x00 : 0x02]), deadline: deadline, what: "socks greeting")
            let method = try Sock.read(fd, count: 2, deadline: deadline, what: "socks method").data
            guard method.count == 2, method[0] == 0x05 else { throw SocketError.unexpected("socks: method reply \(Array(method))") }
            guard method[1] != 0xFF else { return (fd, .refused(step: "method", code: 0xFF)) }
            if let auth {
                var request = Data([0x01, UInt8(auth.user.utf8.count)]) + Data(auth.user.utf8)
                request += Data([UInt8(auth.pass.utf8.count)]) + Data(auth.pass.utf8)
                try Sock.writeAll(fd, request, deadline: deadline, what: "socks auth")
                let status = try Sock.read(fd, count: 2, deadline: deadline, what: "socks auth status").data
                guard status.count == 2 else { throw SocketError.unexpected("socks: short auth status \(Array(status))") }
                guard status[1] == 0x00 else { return (fd, .refused(step: "auth", code: status[1])) }
            }
            var request = Data([0x05, 0x01, 0x00])
            if let host {
                request += Data([0x03, UInt8(host.utf8.count)]) + Data(host.utf8)
            } else {
                request += Data([0x01, 127, 0, 0, 1])
            }
            request += Data([UInt8(targetPort >> 8), UInt8(targetPort & 0xFF)])
            try Sock.writeAll(fd, request, deadline: deadline, what: "socks connect")
            let head = try Sock.read(fd, count: 4, deadline: deadline, what: "socks reply").data
            guard head.count == 4, head[0] == 0x05 else { throw SocketError.unexpected("socks: reply \(Array(head))") }
            let rest: Int
            switch head[3] {
            case 0x01: rest = 4 + 2
            case 0x04: rest = 16 + 2
            case 0x03: rest = Int(try Sock.read(fd, count: 1, deadline: deadline).data.first ?? 0) + 2
            default: throw SocketError.unexpected("socks: reply ATYP \(head[3])")
            }
            _ = try Sock.read(fd, count: rest, deadline: deadline, what: "socks bound address")
            return (fd, head[1] == 0x00 ? .connected : .refused(step: "request", code: head[1]))
        } catch {
            close(fd)
            throw error
        }
    }
}

/// An HTTP proxy client: CONNECT tunnels and raw requests.
enum HTTPProxyClient {
    /// Sends `CONNECT 127.0.0.1:port` (with Basic credentials if given) and returns the socket after a
    /// 200; any other status line is thrown.
    static func connect(proxyPort: UInt16, targetPort: UInt16, auth: (user: String, pass: String)? = nil,
                        timeout: TimeInterval = 10) throws -> Int32 {
        let fd = try Sock.connect(port: proxyPort)
        Sock.setTimeouts(fd, seconds: 0.25)
        do {
            var head = "CONNECT 127.0.0.1:\(targetPort) HTTP/1.1\r\nHost: 127.0.0.1:\(targetPort)\r\n"
            if let auth { head += "Proxy-Authorization: Basic \(Data("\(auth.user):\(auth.pass)".utf8).base64EncodedString())\r\n" }
            head += "\r\n"
            let deadline = Date().addingTimeInterval(timeout)
            try Sock.writeAll(fd, Data(head.utf8), deadline: deadline, what: "CONNECT")
            let response = try readHead(fd, deadline: deadline)
            guard response.hasPrefix("HTTP/1.1 200 ") else { throw SocketError.unexpected("CONNECT answered: \(response)") }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Reads up to and including the blank line that ends a response head (byte by byte: nothing of
    /// the tunnel behind it is consumed).
    static func readHead(_ fd: Int32, deadline: Date) throws -> String {
        var bytes: [UInt8] = []
        while !(bytes.count >= 4 && bytes.suffix(4) == [13, 10, 13, 10]) {
            let r = try Sock.read(fd, count: 1, deadline: deadline, what: "response head")
            if r.eof { throw SocketError.unexpected("EOF in the response head after \(String(decoding: bytes, as: UTF8.self).debugDescription)") }
            bytes += r.data
            if bytes.count > 16384 { throw SocketError.unexpected("response head too long") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Sends `request` on a new connection to the proxy and returns everything until EOF.
    static func exchange(proxyPort: UInt16, request: String, timeout: TimeInterval = 15) throws -> String {
        let fd = try Sock.connect(port: proxyPort)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(timeout)
        try Sock.writeAll(fd, Data(request.utf8), deadline: deadline, what: "request")
        var out = Data()
        while true {
            let r = try Sock.read(fd, count: 65536, deadline: deadline, what: "response")
            out += r.data
            if r.eof { break }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A tiny HTTP origin server: answers every request with `body` and closes, and records each request
/// head it saw (to check what the proxy forwarded).
final class HTTPOriginServer {
    let port: UInt16
    let body: String
    private let listenFD: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private var stopped = false
    private var task: BackgroundTask<Void>!

    init(body: String) throws {
        self.body = body
        (listenFD, port) = try Sock.listen()
        Sock.setTimeouts(listenFD, seconds: 0.2)
        task = BackgroundTask("http-origin-\(port)") { [self] in serve() }
    }

    var requestHeads: [String] { lock.lock(); defer { lock.unlock() }; return heads }

    func stop() {
        lock.lock()
        if stopped { lock.unlock(); return }
        stopped = true
        lock.unlock()
        Glibc.shutdown(listenFD, Int32(SHUT_RDWR))
        _ = task.join(timeout: 5)
        close(listenFD)
    }

    private func serve() {
        while true {
            lock.lock(); let done = stopped; lock.unlock()
            if done { return }
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return
            }
            Sock.setTimeouts(fd, seconds: 0.25)
            if let head = try? HTTPProxyClient.readHead(fd, deadline: Date().addingTimeInterval(10)) {
                lock.lock(); heads.append(head); lock.unlock()
                let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                    + "Connection: close\r\n\r\n\(body)"
                try? Sock.writeAll(fd, Data(response.utf8), deadline: Date().addingTimeInterval(10), what: "response")
            }
            close(fd)
        }
    }
}

/// A plain UDP socket on 127.0.0.1 for talking to a UDP inbound directly.
final class UDPTestSocket {
    private let fd: Int32
    private var closed = false

    init() throws {
        fd = try Sock.socket(Sock.datagramType)
        try Sock.bind(fd, port: 0)
        Sock.setTimeouts(fd, seconds: 0.1)
    }

    func send(_ payload: Data, toPort port: UInt16) throws {
        var address = Sock.loopback(port: port)
        let n = payload.withUnsafeBytes { buf in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if n != payload.count { throw SocketError.call("sendto(127.0.0.1:\(port))", errno) }
    }

    func receive(timeout: TimeInterval) throws -> Data? {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Data(buffer[0..<n]) }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
            throw SocketError.call("recv", errno)
        }
        return nil
    }

    func close() {
        if closed { return }
        closed = true
        Glibc.close(fd)
    }
}
