/// v4 `api` (and Xray's `api.listen`): the gRPC API, served by the supervisor (Sources/Supervisor/API).
///
/// V2Ray serves the API through its own router: a dokodemo-door inbound tagged, say, "api", and a
/// routing rule sending that inbound to the outbound tag `api.tag`. vmessd's workers never see that
/// inbound or rule: the parser turns each such inbound into a `Listener` of the supervisor's gRPC
/// server, on the same address and port, so an operator's config works unchanged.
public struct APIConfig: Codable, Equatable, Sendable {
    public enum Service: String, Codable, Sendable, CaseIterable {
        case handler = "HandlerService"
        case stats = "StatsService"
        case logger = "LoggerService"
    }

    public struct Listener: Codable, Equatable, Sendable {
        public var host: String
        public var port: Int
        /// Where it came from ("inbounds[0]" or "api.listen"), for messages.
        public var jsonPath: String
        public init(host: String, port: Int, jsonPath: String) {
            self.host = host
            self.port = port
            self.jsonPath = jsonPath
        }
    }

    public var tag: String?
    public var services: [Service] = []
    public var listeners: [Listener] = []
    public init() {}

    public func serves(_ service: Service) -> Bool { services.contains(service) }
}
