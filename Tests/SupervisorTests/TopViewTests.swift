// `vmessd ctl top`'s screen without a terminal: rates from two samples, users ranked by rate, and
// the layout kept inside the terminal's size (80×24 over SSH, and smaller).

import Shared
import XCTest
@testable import Supervisor

final class TopViewTests: XCTestCase {
    func sample(at: Double, up: UInt64, inbound: UInt64, alice: UInt64, bob: UInt64, workers: Int = 2,
                rejected: [String: UInt64] = [:]) -> TopView.Sample {
        let rows = (0..<workers).map {
            AdminStatus.Worker(index: $0, pid: Int32(100 + $0), generation: 3, state: "ready", uptimeSeconds: 60,
                               connections: 4, accepted: 10, rejected: 1, restarts: 0)
        }
        let status = AdminStatus(pid: 99, generation: 3, phase: "running", uptimeSeconds: 3700, config: "/etc/vmessd/config.json",
                                 workersConfigured: workers, connections: 8, statusText: "", lastReload: nil,
                                 workers: rows, slots: [], listeners: [])
        var stats = AdminStats(accepted: 20, bytesUp: up, bytesDown: up, rejected: rejected,
                               users: [.init(user: "alice@example.com", up: alice, down: 0), .init(user: "bob@example.com", up: bob, down: 0)],
                               workerRestarts: 0, reloads: 0)
        stats.inboundsUp = ["vmess-in": inbound]
        stats.inboundsDown = ["vmess-in": inbound / 2]
        return TopView.Sample(status: status, stats: stats, at: at)
    }

    func testRatesAndRanking() {
        let first = sample(at: 10, up: 0, inbound: 0, alice: 5_000_000, bob: 0, rejected: ["unknown_user": 1])
        let second = sample(at: 12, up: 4 << 20, inbound: 2 << 20, alice: 5_000_000, bob: 2048,
                            rejected: ["unknown_user": 7, "replay": 2, "dropped_udp_too_large": 50])
        let lines = TopView(width: 80, height: 24).render(second, previous: first)
        let text = lines.joined(separator: "\n")
        XCTAssertEqual(lines[0], "vmessd pid 99 running, generation 3, up 1h1m, 8 connections")
        // 4 MiB in 2 s; 8 handshake rejections (the bound counters are not handshakes) in 2 s.
        XCTAssertEqual(lines[1], "traffic up 2.0 MiB/s, down 2.0 MiB/s; accepted 0/s; rejected 4/s")
        XCTAssertTrue(lines.contains("0       100  3    ready  4      10        1"), text)
        XCTAssertTrue(lines.contains("vmess-in  1.0 MiB/s  512.0 KiB/s  2.0 MiB  1.0 MiB"), text)
        // Bob moved bytes in this interval, Alice did not (her total is larger): Bob first.
        let bob = lines.firstIndex { $0.hasPrefix("bob@example.com") }, alice = lines.firstIndex { $0.hasPrefix("alice@example.com") }
        XCTAssertLessThan(try XCTUnwrap(bob), try XCTUnwrap(alice), text)
        XCTAssertTrue(lines.contains { $0.hasPrefix("bob@example.com") && $0.contains("1.0 KiB/s") }, text)
        XCTAssertTrue(lines.contains("rejected: dropped_udp_too_large 50, unknown_user 7, replay 2"), text)
        XCTAssertEqual(lines.last, "q: quit")
        // The first refresh has no rates yet.
        XCTAssertTrue(TopView(width: 80, height: 24).render(first, previous: nil)[1].hasPrefix("traffic up -, down -"))
    }

    func testFitsTheTerminal() {
        let many = sample(at: 1, up: 0, inbound: 0, alice: 0, bob: 0, workers: 40)
        for (width, height) in [(80, 24), (40, 10), (20, 5), (200, 60)] {
            let lines = TopView(width: width, height: height).render(many, previous: nil)
            XCTAssertLessThanOrEqual(lines.count, height, "\(width)×\(height)")
            XCTAssertTrue(lines.allSatisfy { $0.count <= width }, "\(width)×\(height): \(lines)")
            XCTAssertEqual(lines.last, TopView.cut("q: quit", to: width), "\(width)×\(height): the way out is always shown")
        }
        // 80×24 with 40 workers: the workers table says how many it left out.
        let lines = TopView(width: 80, height: 24).render(many, previous: nil)
        XCTAssertTrue(lines.contains { $0.hasPrefix("… ") && $0.hasSuffix(" more") }, lines.joined(separator: "\n"))
        XCTAssertEqual(TopView.cut("abcdef", to: 4), "abc…")
        XCTAssertEqual(TopView.cut("abc", to: 4), "abc")
    }
}
