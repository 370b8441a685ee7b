import XCTest
@testable import Shared

/// `vmessd.metrics`: the Prometheus endpoint's settings (MetricsSettings).
final class MetricsConfigTests: XCTestCase {
    func metrics(_ object: String) throws -> MetricsSettings? {
        try ConfigParser.parse(text: #"{"vmessd": {"metrics": \#(object)}}"#, sourceFile: "config.json").daemon.metrics
    }

    func testOffByDefaultAndLoopbackByDefault() throws {
        XCTAssertNil(try ConfigParser.parse(text: #"{"vmessd": {"workers": 1}}"#, sourceFile: "c").daemon.metrics)
        let defaults = try XCTUnwrap(try metrics("{}"))
        XCTAssertEqual(defaults.host, "127.0.0.1")
        XCTAssertEqual(defaults.port, 9550)
        XCTAssertFalse(defaults.userLabels)
        XCTAssertTrue(defaults.isLoopback)
        XCTAssertEqual(defaults.address, "127.0.0.1:9550")
    }

    func testListenAndUserLabels() throws {
        let m = try XCTUnwrap(try metrics(#"{"listen": "0.0.0.0:9100", "userLabels": true}"#))
        XCTAssertEqual(m.host, "0.0.0.0")
        XCTAssertEqual(m.port, 9100)
        XCTAssertTrue(m.userLabels)
        XCTAssertFalse(m.isLoopback)
        // IPv6 in brackets, stored canonical.
        let v6 = try XCTUnwrap(try metrics(#"{"listen": "[0:0::1]:9550"}"#))
        XCTAssertEqual(v6.host, "::1")
        XCTAssertTrue(v6.isLoopback)
        XCTAssertEqual(v6.address, "[::1]:9550")
        // Survives the trip to the workers (the served config is encoded).
        let config = try ConfigParser.parse(text: #"{"vmessd": {"metrics": {"listen": "127.0.0.2:1"}}}"#, sourceFile: "c")
        XCTAssertEqual(try JSONDecoder().decode(Config.self, from: JSONEncoder().encode(config)).daemon.metrics, config.daemon.metrics)
    }

    func testErrorsNameTheKey() {
        let expected = "expected \"IP:port\" with an IP address literal and a port 1-65535"
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"listn": "127.0.0.1:1"}}}"#),
                       "config.json: vmessd.metrics.listn: unknown key \"listn\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"listen": "localhost:9550"}}}"#),
                       "config.json: vmessd.metrics.listen: \(expected), got \"localhost:9550\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"listen": "127.0.0.1"}}}"#),
                       "config.json: vmessd.metrics.listen: expected \"host:port\", got \"127.0.0.1\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"listen": "127.0.0.1:0"}}}"#),
                       "config.json: vmessd.metrics.listen: \(expected), got \"127.0.0.1:0\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"listen": ":9550"}}}"#),
                       "config.json: vmessd.metrics.listen: \(expected), got \":9550\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": {"userLabels": "yes"}}}"#),
                       "config.json: vmessd.metrics.userLabels: expected true or false, got \"yes\"")
        XCTAssertEqual(configErrorText(#"{"vmessd": {"metrics": true}}"#),
                       "config.json: vmessd.metrics: expected an object, got boolean")
    }
}
