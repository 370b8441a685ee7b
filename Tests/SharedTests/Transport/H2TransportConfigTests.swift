import XCTest
@testable import Shared

/// gRPC and h2 transport settings in both formats, the keys refused by name, and the server's
/// request check (an extension: it shares TransportConfigTests' config builders).
extension TransportConfigTests {
    func stream(_ text: String, v5: Bool = false) throws -> StreamSettings {
        try parse(v5 ? inboundV5(text) : inboundV4(text)).inbounds[0].stream
    }

    func error(_ text: String, v5: Bool = false) -> String {
        do {
            _ = try stream(text, v5: v5)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testH2GRPCV4AndV5() throws {
        let v4 = try stream(#"{"network": "grpc", "grpcSettings": {"serviceName": "tunnel", "multiMode": true, "initial_windows_size": 131072}}"#)
        XCTAssertEqual(v4.network, .grpc)
        XCTAssertEqual(v4.grpc?.serviceName, "tunnel")
        XCTAssertEqual(v4.grpc?.multiMode, true)
        XCTAssertEqual(v4.grpc?.initialWindowSize, 131072)
        XCTAssertEqual(v4.grpc?.path(multi: false), "/tunnel/Tun")
        XCTAssertEqual(v4.grpc?.path(multi: true), "/tunnel/TunMulti")
        let gun = try stream(#"{"network": "gun", "gunSettings": {"serviceName": "g"}}"#)
        XCTAssertEqual(gun.network, .grpc)
        XCTAssertEqual(gun.grpc?.serviceName, "g")
        XCTAssertEqual(try stream(#"{"network": "grpc"}"#).grpc, GRPCSettings())
        let v5 = try stream(#"{"transport": "grpc", "transportSettings": {"service_name": "five"}}"#, v5: true)
        XCTAssertEqual(v5.network, .grpc)
        XCTAssertEqual(v5.grpc?.serviceName, "five")
    }

    /// Xray's keep-alive keys with grpc-go's rules (10 s at least, 20 s default timeout), Go http2's
    /// for h2 (15 s default timeout); none without an idle time.
    func testKeepAliveKeys() throws {
        let grpc = try stream(#"{"network": "grpc", "grpcSettings": {"idle_timeout": 3, "permit_without_stream": true, "user_agent": "ua/1"}}"#)
        XCTAssertEqual(grpc.grpc?.keepAlive, H2KeepAliveSettings(idle: 10, timeout: 20, withoutStream: true))
        XCTAssertEqual(grpc.grpc?.userAgent, "ua/1")
        XCTAssertEqual(try stream(#"{"network": "grpc", "grpcSettings": {"idleTimeout": 60, "healthCheckTimeout": 5}}"#).grpc?.keepAlive,
                       H2KeepAliveSettings(idle: 60, timeout: 5, withoutStream: false))
        XCTAssertNil(try stream(#"{"network": "grpc", "grpcSettings": {"health_check_timeout": 5}}"#).grpc?.keepAlive)
        XCTAssertEqual(try stream(#"{"network": "h2", "httpSettings": {"read_idle_timeout": 7}}"#).http?.keepAlive,
                       H2KeepAliveSettings(idle: 7, timeout: 15, withoutStream: true))
        XCTAssertNil(try stream(#"{"network": "h2", "httpSettings": {"health_check_timeout": 7}}"#).http?.keepAlive)
    }

    func testH2GRPCKeysVMessdDoesNotImplementAreErrors() {
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"idle_timeout": -1}}"#).contains("idle_timeout"))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"user_agent": "a\nb"}}"#).contains("control characters"))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"serviceName": "/a/b|c"}}"#).contains("custom path form"))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"serviceName": "a b"}}"#).contains("printable ASCII"))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"initial_windows_size": 100}}"#).contains("at least 65535"))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {"bogus": 1}}"#).contains("unknown key \"bogus\""))
        XCTAssertTrue(error(#"{"network": "tcp", "grpcSettings": {}}"#).contains("no effect unless network is \"grpc\""))
        XCTAssertTrue(error(#"{"network": "grpc", "grpcSettings": {}, "gunSettings": {}}"#).contains("same settings"))
    }

    func testH2HTTPV4AndV5() throws {
        let v4 = try stream(#"{"network": "h2", "httpSettings": {"host": ["a.test", "b.test"], "path": "up", "method": "POST", "headers": {"X-A": ["1", "2"], "X-B": "3"}}}"#)
        XCTAssertEqual(v4.network, .h2)
        XCTAssertEqual(v4.http?.hosts, ["a.test", "b.test"])
        XCTAssertEqual(v4.http?.path, "/up")
        XCTAssertEqual(v4.http?.method, "POST")
        XCTAssertEqual(v4.http?.headers, [.init(name: "x-a", value: "1"), .init(name: "x-a", value: "2"), .init(name: "x-b", value: "3")])
        let plain = try stream(#"{"network": "http"}"#)
        XCTAssertEqual(plain.network, .h2)
        XCTAssertEqual(plain.http?.effectiveHosts, ["www.example.com"])
        XCTAssertEqual(plain.http?.method, "PUT")
        XCTAssertEqual(try stream(#"{"network": "h2", "httpSettings": {"host": "one.test"}}"#).http?.hosts, ["one.test"])
        let v5 = try stream(#"{"transport": "http", "transportSettings": {"host": ["c.test"], "path": "/p", "header": [{"name": "X-C", "value": ["4"]}]}}"#, v5: true)
        XCTAssertEqual(v5.network, .h2)
        XCTAssertEqual(v5.http?.hosts, ["c.test"])
        XCTAssertEqual(v5.http?.headers, [.init(name: "x-c", value: "4")])
    }

    func testH2HTTPSettingsErrors() {
        XCTAssertTrue(error(#"{"network": "h2", "httpSettings": {"read_idle_timeout": "10"}}"#).contains("read_idle_timeout"))
        XCTAssertTrue(error(#"{"network": "h2", "httpSettings": {"headers": {"Host": "x"}}}"#).contains("cannot be set on an HTTP/2 request"))
        XCTAssertTrue(error(#"{"network": "h2", "httpSettings": {"method": "GE T"}}"#).contains("invalid HTTP method"))
        XCTAssertTrue(error(#"{"network": "h2", "httpSettings": {"host": [""]}}"#).contains("not a valid authority"))
    }

    func testH2OutboundNeedsTLS() throws {
        func outbound(_ stream: String) -> String {
            """
            {"inbounds": [], "outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "127.0.0.1", "port": 1,
              "users": [{"id": "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"}]}]}, "streamSettings": \(stream)}]}
            """
        }
        XCTAssertThrowsError(try parse(outbound(#"{"network": "h2"}"#))) {
            XCTAssertTrue("\($0)".contains("needs \"security\": \"tls\""), "\($0)")
        }
        XCTAssertNoThrow(try parse(outbound(#"{"network": "h2", "security": "tls"}"#)))
        XCTAssertNoThrow(try parse(outbound(#"{"network": "grpc"}"#)))
    }

    func testH2RequestCheck() {
        var grpc = GRPCSettings()
        grpc.serviceName = "svc"
        let gun = H2RequestCheck(.gun(grpc))
        XCTAssertEqual(gun.decide(method: "POST", path: "/svc/Tun", authority: "x", contentType: "application/grpc"), .openGun(multi: false))
        XCTAssertEqual(gun.decide(method: "POST", path: "/svc/TunMulti", authority: nil, contentType: "application/grpc+proto"), .openGun(multi: true))
        XCTAssertEqual(gun.decide(method: "POST", path: "/other/Tun", authority: "x", contentType: "application/grpc"), .grpcUnimplemented)
        XCTAssertEqual(gun.decide(method: "GET", path: "/svc/Tun", authority: "x", contentType: "application/grpc"), .notFound)
        XCTAssertEqual(gun.decide(method: "POST", path: "/svc/Tun", authority: "x", contentType: "application/grpcx"), .notFound)
        XCTAssertEqual(gun.decide(method: "POST", path: "/svc/Tun", authority: "x", contentType: nil), .notFound)

        var http = HTTPSettings()
        http.hosts = ["a.test"]
        http.path = "/up"
        let h2 = H2RequestCheck(.http(http))
        XCTAssertEqual(h2.decide(method: "PUT", path: "/up", authority: "a.test", contentType: nil), .openRaw)
        XCTAssertEqual(h2.decide(method: "GET", path: "/upload?x=1", authority: "a.test", contentType: nil), .openRaw)
        XCTAssertEqual(h2.decide(method: "PUT", path: "/down", authority: "a.test", contentType: nil), .notFound)
        XCTAssertEqual(h2.decide(method: "PUT", path: "/up", authority: "b.test", contentType: nil), .notFound)
        XCTAssertEqual(h2.decide(method: "PUT", path: "/up", authority: nil, contentType: nil), .notFound)
        XCTAssertEqual(H2RequestCheck(.http(HTTPSettings())).decide(method: "PUT", path: "/", authority: "www.example.com", contentType: nil), .openRaw)
    }
}
