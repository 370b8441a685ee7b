// The linear-time regex subset used for `regexp:` rules.

import XCTest

@testable import Shared

final class DomainRegexTests: XCTestCase {
    private func matches(_ pattern: String, _ input: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        do {
            return try DomainRegex([pattern]).matches(Array(input.utf8))
        } catch {
            XCTFail("\(pattern): \(error)", file: file, line: line)
            return false
        }
    }

    func testSemantics() {
        // Unanchored search, like Go's MatchString.
        XCTAssertTrue(matches("goo", "www.google.com"))
        XCTAssertFalse(matches("^goo", "www.google.com"))
        XCTAssertTrue(matches("^www", "www.google.com"))
        XCTAssertTrue(matches("com$", "www.google.com"))
        XCTAssertFalse(matches("com$", "www.google.com.cn"))
        XCTAssertTrue(matches("\\Awww.*\\z", "www.x"))
        XCTAssertTrue(matches("^a[1-5]\\.mzstatic\\.com$", "a3.mzstatic.com"))
        XCTAssertFalse(matches("^a[1-5]\\.mzstatic\\.com$", "a6.mzstatic.com"))
        XCTAssertFalse(matches("^a[1-5]\\.mzstatic\\.com$", "a3xmzstatic.com"))
        XCTAssertTrue(matches("^adservice\\.google\\.([a-z]{2}|com?)(\\.[a-z]{2})?$", "adservice.google.co.uk"))
        XCTAssertTrue(matches("^adservice\\.google\\.([a-z]{2}|com?)(\\.[a-z]{2})?$", "adservice.google.com"))
        XCTAssertFalse(matches("^adservice\\.google\\.([a-z]{2}|com?)(\\.[a-z]{2})?$", "adservice.google.comx"))
        XCTAssertTrue(matches("(^|\\.)803[a-z]{0,2}\\.tv$", "x.803ab.tv"))
        XCTAssertFalse(matches("(^|\\.)803[a-z]{0,2}\\.tv$", "x803ab.tv"))
        XCTAssertTrue(matches("^pinggai\\d\\.caixin\\.com$", "pinggai7.caixin.com"))
        XCTAssertTrue(matches("[^a-z]", "abc-"))
        XCTAssertFalse(matches("[^a-z]", "abc"))
        XCTAssertTrue(matches("a{2,}", "baab"))
        XCTAssertFalse(matches("a{3,}", "baab"))
        XCTAssertTrue(matches("^(?:ab)+$", "ababab"))
        XCTAssertFalse(matches("^(?:ab)+$", "ababa"))
        XCTAssertTrue(matches("^x*?$", ""))
        XCTAssertTrue(matches("", "anything"))
        XCTAssertTrue(matches("a{,2}", "a{,2}"))  // not a count: literal, as in RE2
        XCTAssertTrue(matches("[]a]", "]"))
        XCTAssertTrue(matches("[\\d.]+$", "1.2"))
        XCTAssertTrue(matches("\\w\\W\\s\\S", "a- x"))
    }

    func testUnionOfPatterns() throws {
        let regex = try DomainRegex(["^a$", "b$", "^c"])
        XCTAssertTrue(regex.matches(Array("a".utf8)))
        XCTAssertTrue(regex.matches(Array("xb".utf8)))
        XCTAssertTrue(regex.matches(Array("cx".utf8)))
        XCTAssertFalse(regex.matches(Array("xa".utf8)))
    }

    func testUnsupportedSyntax() {
        for (pattern, reason) in [
            ("(?i)abc", "group flags and named groups are not supported"),
            ("(?P<n>a)", "group flags and named groups are not supported"),
            ("\\bfoo", "escape \\b is not supported"),
            ("\\1", "escape \\1 is not supported"),
            ("[[:alpha:]]", "POSIX classes like [:alpha:] are not supported"),
            ("(ab", "missing \")\""),
            ("ab)", "unexpected \")\""),
            ("[ab", "missing \"]\""),
            ("*a", "missing argument to repetition operator"),
            ("a{1001}", "repeat count larger than 1000"),
            ("a{3,2}", "invalid repeat count {3,2}"),
            ("[z-a]", "invalid class range"),
            ("ab\\", "trailing backslash"),
            ("((((a{1000}){1000}){1000}))", "pattern too large"),
            // Go's RE2 (V2Ray) refuses stacked repetitions; FuzzGeoData found `^.+++*+++` taking
            // seconds when each `+` was accepted and compiled as a copy.
            ("^.+++*+++", "invalid nested repetition operator at byte 3"),
            ("a*+", "invalid nested repetition operator at byte 2"),
            ("a{2}{3}", "invalid nested repetition operator at byte 4"),
        ] {
            XCTAssertThrowsError(try DomainRegex.validate(pattern), pattern) { error in
                XCTAssertEqual((error as? DomainRegex.SyntaxError)?.reason, reason, pattern)
            }
        }
    }

    /// `x+` compiles to one copy of x (the loop body), so nested groups stay linear in size, and
    /// lazy quantifiers and a literal `{` after a repetition are still fine.
    func testRepetitionStaysLinearInSize() throws {
        let nested = try DomainRegex(["((((((((((.+)+)+)+)+)+)+)+)+)+)+"])
        XCTAssertLessThan(nested.program.count, 40, "one copy per level, not 2^10")
        XCTAssertTrue(nested.matches(Array("x".utf8)))
        XCTAssertFalse(nested.matches([]))
        XCTAssertTrue(try DomainRegex(["^ab{2,}c$"]).matches(Array("abbbc".utf8)))
        XCTAssertFalse(try DomainRegex(["^ab{2,}c$"]).matches(Array("abc".utf8)))
        XCTAssertTrue(try DomainRegex(["^a+?b$"]).matches(Array("aab".utf8)))
        XCTAssertTrue(try DomainRegex(["^a*{$"]).matches(Array("aa{".utf8)))
    }

    /// Patterns that take exponential time in a backtracking engine finish at once here.
    func testNoCatastrophicBacktracking() throws {
        let input = Array((String(repeating: "a", count: 250) + "!").utf8)
        for pattern in ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "(.*a){20}$", "^(a*)*b$"] {
            let regex = try DomainRegex([pattern])
            let start = DispatchTime.now().uptimeNanoseconds
            XCTAssertFalse(regex.matches(input), pattern)
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            XCTAssertLessThan(elapsed, 2_000_000_000, pattern)  // a bound against hangs, not a benchmark
        }
    }
}

final class DomainRegexDFATests: XCTestCase {
    /// The lazy DFA answers exactly as the NFA simulation, also when its cache is tiny and keeps being
    /// dropped, on random patterns and inputs over a small alphabet (where matches are frequent).
    func testAgreesWithTheNFA() throws {
        var generator = SplitMix(seed: 7)
        let atoms = ["a", "b", ".", "[ab]", "[^a]", "(a|b)", "(ab|b)", "\\.", "^", "$", "(?:a.)", "c"]
        let quantifiers = ["", "", "*", "+", "?", "{2}", "{1,3}"]
        for _ in 0..<300 {
            var pattern = ""
            for _ in 0..<(1 + Int(generator.next() % 5)) {
                pattern += atoms[Int(generator.next() % UInt64(atoms.count))]
                pattern += quantifiers[Int(generator.next() % UInt64(quantifiers.count))]
            }
            guard let regex = try? DomainRegex([pattern]) else { continue }
            let big = DomainRegexDFA(regex)
            let small = DomainRegexDFA(regex, maximumStates: 2)
            for _ in 0..<40 {
                let input = (0..<Int(generator.next() % 12)).map { _ in Array("ab.c".utf8)[Int(generator.next() % 4)] }
                let expected = regex.matches(input)
                XCTAssertEqual(big.matches(input), expected, "\(pattern) on \(String(decoding: input, as: UTF8.self))")
                XCTAssertEqual(small.matches(input), expected, "\(pattern) on \(String(decoding: input, as: UTF8.self))")
            }
        }
    }

    func testAnchorsAndEmptyInput() throws {
        for (pattern, input, expected) in [("^$", "", true), ("^a$", "a", true), ("^a$", "ba", false), ("a$", "ba", true),
                                           ("^", "x", true), ("x^", "x", false), ("$x", "x", false), ("b|^a", "ca", false)] {
            let dfa = DomainRegexDFA(try DomainRegex([pattern]))
            XCTAssertEqual(dfa.matches(Array(input.utf8)), expected, "\(pattern) on \(input)")
        }
    }
}
