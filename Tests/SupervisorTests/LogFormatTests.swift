// Log lines are an interface too: journald reads the "<N>" prefix, people and scripts read the rest.

import Logging
import Shared
import XCTest

final class LogFormatTests: XCTestCase {
    func testPlainLine() {
        let handler = LineLogHandler(label: "vmessd", style: .plain)
        // 2026-11-21T23:59:59Z
        let line = handler.format(level: .notice, message: "listening",
                                  metadata: ["port": "10086", "address": "127.0.0.1:10086"], time: 1_795_305_599)
        XCTAssertEqual(line, "2026-11-21T23:59:59Z notice vmessd: listening address=127.0.0.1:10086 port=10086")
    }

    func testJournalLineCarriesSyslogPriority() {
        let handler = LineLogHandler(label: "vmessd-worker", style: .journal)
        let levels: [(Logger.Level, String)] = [(.critical, "<2>"), (.error, "<3>"), (.warning, "<4>"),
                                                 (.notice, "<5>"), (.info, "<6>"), (.debug, "<7>"), (.trace, "<7>")]
        for (level, prefix) in levels {
            XCTAssertEqual(handler.format(level: level, message: "m", metadata: [:], time: 0), "\(prefix)m")
        }
    }

    func testLinesStaySingleAndValuesStaySplittable() {
        let handler = LineLogHandler(label: "x", style: .journal)
        let line = handler.format(level: .error, message: "two\nlines\r\n", metadata: [
            "error": "bind: Address in use", "empty": "", "q": "say \"hi\"",
        ], time: 0)
        XCTAssertEqual(line, #"<3>two\nlines\r\n empty="" error="bind: Address in use" q="say \"hi\"""#)
    }

    func testConfigLevelMapping() {
        XCTAssertEqual(Logger.Level(config: .warning), .notice)
        XCTAssertEqual(Logger.Level(config: .debug), .debug)
        XCTAssertEqual(Logger.Level(config: .error), .error)
        XCTAssertEqual(Logger.Level(config: .none), .critical)
    }
}
