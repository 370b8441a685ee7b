/// The tcp transport's HTTP disguise (v4 `tcpSettings.header` with `type: "http"`, v5 tcp
/// `transportSettings.headerSettings` of type `v2ray.core.transport.internet.headers.http.Config`):
/// the client sends a fake request head before its stream, the server checks its path and answers a
/// fake response head before its own stream. Every header has a list of values; one of them is picked
/// at random per connection (V2Ray's RequestConfig/ResponseConfig).
///
/// The defaults here are the message's own (v5); the v4 loader fills in browser-like headers on top
/// (ConfigParser+TCPHeader.swift).
public struct TCPHTTPHeaderSettings: Codable, Equatable, Sendable {
    public struct Header: Codable, Equatable, Sendable {
        public var name: String
        /// Empty: the header is sent with an empty value (V2Ray picks "" from an empty list).
        public var values: [String]
        public init(name: String, values: [String]) {
            self.name = name
            self.values = values
        }
    }

    public struct Request: Codable, Equatable, Sendable {
        /// Without "HTTP/": "1.1".
        public var version = "1.1"
        public var method = "GET"
        /// Request targets; the client sends one at random, the server accepts a request whose path is
        /// any of them.
        public var paths = ["/"]
        /// In the order they are sent.
        public var headers: [Header] = []
        public init() {}
    }

    public struct Response: Codable, Equatable, Sendable {
        public var version = "1.1"
        public var status = "200"
        public var reason = "OK"
        public var headers: [Header] = []
        public init() {}
    }

    public var request = Request()
    public var response = Response()
    public init() {}
}
