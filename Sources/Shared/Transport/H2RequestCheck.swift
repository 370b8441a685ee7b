// What a server on the gRPC ("gun") or h2 transport answers to a request's head, from its
// pseudo-headers and content-type alone (pure: the HTTP/2 shell in Sources/Worker/Transport feeds it).
//
//   gun:  POST /<serviceName>/Tun or /TunMulti with content-type application/grpc[+proto|;...] → open
//         a POST to another path with a gRPC content-type → gRPC UNIMPLEMENTED (what grpc-go answers)
//         anything else (another method, not gRPC)         → 404, as sing-box's gRPC server does
//   h2:   :authority one of the hosts, :path starting with the configured path → open (any method,
//         as in V2Ray's hub, which checks only host and path); anything else → 404

/// The server's decision on one HTTP/2 request head.
public enum H2RequestDecision: Equatable, Sendable {
    /// Serve it: gun messages (`multi`: TunMulti) or the raw body.
    case openGun(multi: Bool)
    case openRaw
    /// `:status 404`, no body.
    case notFound
    /// `:status 200` with grpc-status 12 (UNIMPLEMENTED) in a trailers-only response.
    case grpcUnimplemented
}

public struct H2RequestCheck: Sendable {
    public enum Kind: Sendable {
        case gun(GRPCSettings)
        case http(HTTPSettings)
    }

    public let kind: Kind
    private let tunPath: String
    private let tunMultiPath: String

    public init(_ kind: Kind) {
        self.kind = kind
        switch kind {
        case .gun(let settings):
            tunPath = settings.path(multi: false)
            tunMultiPath = settings.path(multi: true)
        case .http:
            tunPath = ""
            tunMultiPath = ""
        }
    }

    /// `authority`: `:authority` (or a Host header when a client sent that instead).
    public func decide(method: String, path: String, authority: String?, contentType: String?) -> H2RequestDecision {
        switch kind {
        case .gun:
            let isGRPC = contentType.map(Self.isGRPCContentType) ?? false
            guard method == "POST", isGRPC else { return .notFound }
            if path == tunPath { return .openGun(multi: false) }
            if path == tunMultiPath { return .openGun(multi: true) }
            return .grpcUnimplemented
        case .http(let settings):
            guard let authority, settings.effectiveHosts.contains(authority) else { return .notFound }
            // V2Ray compares the URL's path (no query) with a prefix check.
            let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
            guard pathOnly.hasPrefix(settings.path) else { return .notFound }
            return .openRaw
        }
    }

    /// "application/grpc", optionally followed by "+format" or ";params" (gRPC over HTTP/2, Content-Type).
    static func isGRPCContentType(_ value: String) -> Bool {
        let base = "application/grpc"
        guard value.lowercased().hasPrefix(base) else { return false }
        let rest = value.dropFirst(base.count)
        return rest.isEmpty || rest.first == "+" || rest.first == ";"
    }
}
