// Registers one unary method under several service names: V2Ray's clients call
// /v2ray.core.app.stats.command.StatsService/QueryStats, Xray's /xray.app.stats.command.StatsService/
// QueryStats, with the same messages on the wire (see Protos/). The handler learns which package was
// called, for the type names it writes into replies (TypedMessage).

import GRPCCore
import GRPCProtobuf
import SwiftProtobuf

/// The package prefix a call came in under.
enum APIDialect: String, Sendable {
    case v2ray = "v2ray.core"
    case xray = "xray"
}

extension RPCRouter {
    mutating func registerUnary<Input: SwiftProtobuf.Message & Sendable, Output: SwiftProtobuf.Message & Sendable>(
        services: [(APIDialect, String)], method: String,
        _ handler: @escaping @Sendable (Input, APIDialect) async throws -> Output
    ) {
        for (dialect, service) in services {
            registerHandler(forMethod: MethodDescriptor(fullyQualifiedService: service, method: method),
                            deserializer: ProtobufDeserializer<Input>(), serializer: ProtobufSerializer<Output>()) { request, _ in
                let single = try await ServerRequest(stream: request)
                let output = try await handler(single.message, dialect)
                return StreamingServerResponse(single: ServerResponse(message: output))
            }
        }
    }
}
