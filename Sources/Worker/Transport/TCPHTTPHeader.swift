import Foundation
import Shared

/// The tcp transport's HTTP disguise (V2Ray's transport/internet/headers/http), pure: the heads both
/// sides write and the server's decision on the client's head. No I/O; the randomness and the clock
/// come in as arguments. TCPHTTPHeaderServerHandler and TCPHTTPHeaderClientHandler carry it out.
///
///   client → server:  METHOD path HTTP/version\r\n  Name: value\r\n ...  \r\n  VMess request ...
///   server → client:  HTTP/version status reason\r\n  Name: value\r\n ...  [Date: ...\r\n]  \r\n  VMess response ...
///
/// Each header's value, and the client's path, is chosen at random per connection from the configured
/// lists. The server accepts a request whose path (without query, percent-decoded, as Go's URL.Path)
/// is one of the configured paths; a head that does not parse gets 400, a wrong path 404, each with
/// V2Ray's refusal headers, and no VMess. The client checks nothing but that an HTTP head came back
/// (V2Ray's client reads the head and discards it, whatever its status).
struct TCPHTTPHeader {
    let settings: TCPHTTPHeaderSettings

    /// Longest request (server) or response (client) head accepted, the terminating blank line
    /// included: V2Ray's maxHeaderLength. Longer is refused with 400.
    static let maximumHead = 8192

    enum Verdict: Equatable {
        case accept
        case refuse(UpgradeRequestCheck.Refusal)
    }

    // MARK: writing

    func requestHead<R: RandomNumberGenerator>(using random: inout R) -> String {
        let request = settings.request
        var text = "\(request.method) \(Self.pick(request.paths, &random)) HTTP/\(request.version)\r\n"
        Self.appendHeaders(request.headers, to: &text, &random)
        return text + "\r\n"
    }

    /// `now`: seconds since 1970, for the Date header V2Ray adds unless one is configured.
    func responseHead<R: RandomNumberGenerator>(now: Int64, using random: inout R) -> String {
        let response = settings.response
        var text = "HTTP/\(response.version) \(response.status) \(response.reason)\r\n"
        Self.appendHeaders(response.headers, to: &text, &random)
        if !response.headers.contains(where: { $0.name.lowercased() == "date" }) {
            text += "Date: \(Self.httpDate(now))\r\n"
        }
        return text + "\r\n"
    }

    /// What V2Ray's server writes when it closes a connection without having answered: 404 for a wrong
    /// path, 400 for anything else (a bad or too long head, a timeout, a stream that failed after a
    /// good head).
    static func refusalHead(_ refusal: UpgradeRequestCheck.Refusal, now: Int64) -> String {
        "HTTP/1.1 \(refusal.statusLine)\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\n"
            + "Date: \(httpDate(now))\r\n\r\n"
    }

    private static func pick<R: RandomNumberGenerator>(_ values: [String], _ random: inout R) -> String {
        switch values.count {
        case 0: ""
        case 1: values[0]
        default: values[Int.random(in: 0..<values.count, using: &random)]
        }
    }

    private static func appendHeaders<R: RandomNumberGenerator>(_ headers: [TCPHTTPHeaderSettings.Header],
                                                                to text: inout String, _ random: inout R) {
        for header in headers { text += "\(header.name): \(pick(header.values, &random))\r\n" }
    }

    // MARK: the server's check

    func check(_ head: HTTPHeadLines) -> Verdict {
        guard let path = Self.requestLinePath(head.startLine) else { return .refuse(.badRequest) }
        return settings.request.paths.contains(path) ? .accept : .refuse(.notFound)
    }

    /// The path of a request line as Go's http.readRequest and URL.Path see it, or nil when Go would
    /// not parse the line (the server answers 400 then). `METHOD SP target SP HTTP/d.d`.
    static func requestLinePath(_ line: String) -> String? {
        guard let firstSpace = line.firstIndex(of: " ") else { return nil }
        let method = line[..<firstSpace]
        let rest = line[line.index(after: firstSpace)...]
        guard let secondSpace = rest.firstIndex(of: " ") else { return nil }
        let target = rest[..<secondSpace]
        let version = rest[rest.index(after: secondSpace)...]
        guard ConfigParser.isHeaderName(String(method)), isHTTPVersion(version) else { return nil }
        return requestPath(target)
    }

    /// "HTTP/" digit "." digit (Go's ParseHTTPVersion).
    static func isHTTPVersion(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 8, bytes[0..<5].elementsEqual("HTTP/".utf8), bytes[6] == UInt8(ascii: ".") else { return false }
        return (0x30...0x39).contains(bytes[5]) && (0x30...0x39).contains(bytes[7])
    }

    /// URL.Path of a request target (url.ParseRequestURI): origin form "/p?q", "*", or absolute form
    /// "scheme://authority/p?q". The query is dropped and percent escapes decoded; nil when Go refuses
    /// the target (empty, control characters, a bad escape, a relative path).
    static func requestPath(_ target: Substring) -> String? {
        guard !target.isEmpty, !target.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        if target == "*" { return "*" }
        var raw: Substring
        if target.hasPrefix("/") {
            raw = target
        } else {
            // scheme ":" ["//" authority] path
            guard let colon = target.firstIndex(of: ":"), isScheme(target[..<colon]) else { return nil }
            raw = target[target.index(after: colon)...]
            if raw.hasPrefix("//") {
                let authority = raw.dropFirst(2)
                raw = authority[(authority.firstIndex(of: "/") ?? authority.endIndex)...]
            } else if !raw.hasPrefix("/") {
                return nil
            }
        }
        let path = raw.prefix { $0 != "?" }
        guard path.contains("%") else { return String(path) }
        return path.removingPercentEncoding
    }

    private static func isScheme(_ text: Substring) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0)) }
    }

    /// Whether the first line of a head still arriving already rules the request out: V2Ray's server
    /// parses what it has after every read and answers 400 at once when the request line is bad, rather
    /// than waiting for a blank line that a prober never sends. nil: no complete line yet.
    static func startLineIsBad(_ pending: [UInt8]) -> Bool? {
        guard let lf = pending.firstIndex(of: 10) else { return nil }
        guard lf > 0, pending[lf - 1] == 13, !pending[..<lf].contains(0) else { return true }
        return requestLinePath(String(decoding: pending[..<(lf - 1)], as: UTF8.self)) == nil
    }

    // MARK: the Date header

    /// RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), what Go's http.TimeFormat writes.
    static func httpDate(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400)
        let time = seconds - days * 86400
        // 1970-01-01 was a Thursday.
        let weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][Int(((days % 7) + 11) % 7)]
        let (year, month, day) = civil(daysSince1970: days)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(two(day)) \(months[Int(month) - 1]) \(year) \(two(time / 3600)):\(two(time / 60 % 60)):\(two(time % 60)) GMT"
    }

    /// Proleptic Gregorian date of a day number (H. Hinnant's civil_from_days).
    private static func civil(daysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
