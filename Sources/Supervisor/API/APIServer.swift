// The gRPC API's listeners: one HTTP/2 (h2c) gRPC server per configured address (APIConfig), on a
// one-thread event loop group of its own, so nothing the API does runs on the supervisor's main
// loop except the short closures it hands over (MainLoopBridge). The supervisor creates each
// listening socket itself (bound at start: a port in use is a start-up error, as for inbounds).
// Plaintext, like the reference's: bind it to loopback (the default of the examples) or protect it.

import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOPosix
import Shared

final class APIServer {
    let config: APIConfig
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var servers: [GRPCServer<HTTP2ServerTransport.Posix>] = []
    /// Where each listener is bound ("127.0.0.1:10085"), for logs and tests.
    private(set) var addresses: [String] = []

    init(config: APIConfig, bridge: MainLoopBridge, logger: Logger) throws {
        self.config = config
        for listener in config.listeners {
            let fd = try Posix.makeListeningSocket(host: listener.host, port: listener.port, reusePort: false, backlog: 128)
            let address = (try? Posix.localAddress(fd: fd)).map { "\($0)" } ?? "\(listener.host):\(listener.port)"
            // The transport owns the descriptor from here on.
            let transport = HTTP2ServerTransport.Posix(listeningSocketDescriptor: Int(fd), transportSecurity: .plaintext,
                                                      config: .defaults, eventLoopGroup: group)
            let server = GRPCServer(transport: transport, services: [APIServices(services: config.services, bridge: bridge)])
            servers.append(server)
            addresses.append(address)
            Task {
                do {
                    try await server.serve()
                } catch {
                    logger.error("gRPC API listener failed", metadata: ["address": "\(address)", "error": "\(error)"])
                }
            }
            logger.notice("gRPC API", metadata: [
                "address": "\(address)", "from": "\(listener.jsonPath)",
                "services": "\(config.services.map(\.rawValue).joined(separator: ","))",
            ])
        }
    }

    /// Stops listening; calls in progress finish.
    func stop() {
        for server in servers { server.beginGracefulShutdown() }
        servers.removeAll()
    }
}
