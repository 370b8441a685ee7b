import NIOCore
import Shared
import XCTest

@testable import Worker

/// Which targets the freedom outbound connects to without a resolver: only IP literals the system
/// resolver would hand back unchanged (connect(host:) stays for names, the built-in DNS and a
/// literal of a family the domainStrategy leaves out, which must still fail as before).
final class FreedomDialerTests: XCTestCase {
    private func literal(_ address: VMessAddress, strategy: FreedomSettings.DomainStrategy = .asIs,
                         redirect: String? = nil) -> NIOCore.SocketAddress? {
        var settings = FreedomSettings()
        settings.domainStrategy = strategy
        settings.redirectHost = redirect
        let dialer = FreedomDialer(settings: settings)
        let (host, port) = dialer.target(for: address, port: 443)
        return dialer.literalTarget(host: host, address: address, port: port)
    }

    func testLiteralsConnectWithoutResolving() throws {
        XCTAssertEqual(literal(.ipv4([127, 0, 0, 1])), try SocketAddress(ipAddress: "127.0.0.1", port: 443))
        let v6 = [UInt8](repeating: 0, count: 15) + [1]
        XCTAssertEqual(literal(.ipv6(v6)), try SocketAddress(ipAddress: "::1", port: 443))
        XCTAssertEqual(literal(.domain("example.com"), redirect: "10.0.0.1"), try SocketAddress(ipAddress: "10.0.0.1", port: 443))
    }

    func testNamesAndFilteredFamiliesStillGoThroughTheResolver() {
        XCTAssertNil(literal(.domain("localhost")))
        XCTAssertNil(literal(.ipv4([127, 0, 0, 1]), redirect: "localhost"))
        XCTAssertNil(literal(.ipv6([UInt8](repeating: 0, count: 15) + [1]), strategy: .useIPv4))
        XCTAssertNil(literal(.ipv4([127, 0, 0, 1]), strategy: .useIPv6))
        XCTAssertNotNil(literal(.ipv4([127, 0, 0, 1]), strategy: .useIPv4))
    }
}
