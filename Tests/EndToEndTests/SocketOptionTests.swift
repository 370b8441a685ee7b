// `sockopt` and `sendThrough` with the real binaries (issue 8): the v2ray client carries a long-lived
// connection through vmessd to an echo target, and the kernel's own view of the two sockets vmessd
// holds for it (`ss -tnieo`) must show what the config asked for: the accepted socket with the
// inbound's mark, keep-alive timer and congestion control, the dialed socket leaving from the
// `sendThrough` address with the outbound's mark.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class SocketOptionTests: EndToEndTestCase {
    func testInboundAndOutboundSocketOptionsReachTheKernel() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let port = try FreePort.tcp()
        let extra: [String: Any] = [
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "vmess",
                "settings": ["clients": [user.serverJSON]],
                "streamSettings": ["sockopt": ["mark": 0x51, "tcpKeepAliveIdle": 77, "tcpCongestion": "cubic"]],
            ]],
            "outbounds": [[
                "protocol": "freedom", "sendThrough": "127.0.0.2",
                "streamSettings": ["sockopt": ["mark": 0x52, "tcpKeepAliveIdle": 66, "tcpCongestion": "reno"]],
            ]],
        ]
        let server = try startVMessd(users: [user], workers: 1, port: port, extra: extra)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)

        // One connection held open (echo checked) while the kernel is asked about its sockets.
        let fd = try Sock.connect(port: client.port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let payload = randomData(4096)
        try Sock.writeAll(fd, payload, deadline: Date().addingTimeInterval(5))
        let echoed = try Sock.read(fd, count: payload.count, deadline: Date().addingTimeInterval(10), what: "echo")
        XCTAssertEqual(echoed.data, payload)

        let sockets = try run("/usr/bin/env", ["ss", "-tnieo", "state", "established"]).stdout
        // ss prints each socket on two lines: "Recv-Q Send-Q Local Peer options…", then TCP details.
        let lines = sockets.components(separatedBy: "\n")
        func entry(local: (String) -> Bool, peer: (String) -> Bool) -> String? {
            for (i, line) in lines.enumerated() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                guard fields.count >= 4, local(fields[2]), peer(fields[3]) else { continue }
                return line + " " + (i + 1 < lines.count ? lines[i + 1] : "")
            }
            return nil
        }
        // Accepted by vmessd: its local port is the inbound's.
        let accepted = try XCTUnwrap(entry(local: { $0 == "127.0.0.1:\(port)" }, peer: { _ in true }),
                                     "no accepted socket in:\n\(sockets)")
        XCTAssertTrue(accepted.contains("fwmark:0x51"), accepted)
        XCTAssertTrue(accepted.contains("timer:(keepalive,"), accepted)
        XCTAssertTrue(accepted.contains(" cubic "), accepted)
        // Dialed by vmessd: to the echo target, from 127.0.0.2.
        let dialed = try XCTUnwrap(entry(local: { $0.hasPrefix("127.0.0.2:") }, peer: { $0 == "127.0.0.1:\(echo.port)" }),
                                   "no socket from 127.0.0.2 to the target in:\n\(sockets)")
        XCTAssertTrue(dialed.contains("fwmark:0x52"), dialed)
        XCTAssertTrue(dialed.contains("timer:(keepalive,"), dialed)
        XCTAssertTrue(dialed.contains(" reno "), dialed)
    }
}
