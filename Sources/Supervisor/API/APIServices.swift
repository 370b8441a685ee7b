// The gRPC services of the V2Ray/Xray API, each under both package names (UnaryRegistration), each
// answered on the supervisor's main loop through MainLoopBridge:
//   StatsService   GetStats, QueryStats, GetSysStats; Xray's GetStatsOnline, GetStatsOnlineIpList,
//                  GetAllOnlineUsers
//   HandlerService AlterInbound (AddUserOperation, RemoveUserOperation), Xray's GetInboundUsers and
//                  GetInboundUsersCount
//   LoggerService  RestartLogger
// Methods the reference has and vmessd does not (AddInbound, AlterOutbound, …) are not registered:
// clients get UNIMPLEMENTED.

import APIMessages
import GRPCCore
import Shared
import SwiftProtobuf

struct APIServices: RegistrableRPCService {
    let services: [APIConfig.Service]
    let bridge: MainLoopBridge

    static func names(_ service: APIConfig.Service) -> [(APIDialect, String)] {
        let path: String
        switch service {
        case .stats: path = "app.stats.command.StatsService"
        case .handler: path = "app.proxyman.command.HandlerService"
        case .logger: path = "app.log.command.LoggerService"
        }
        return [(.v2ray, "v2ray.core.\(path)"), (.xray, "xray.\(path)")]
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        if services.contains(.stats) { registerStats(&router) }
        if services.contains(.handler) { registerHandler(&router) }
        if services.contains(.logger) { registerLogger(&router) }
    }

    // MARK: StatsService

    private func registerStats<T: ServerTransport>(_ router: inout RPCRouter<T>) {
        let names = Self.names(.stats)
        let bridge = self.bridge
        router.registerUnary(services: names, method: "GetStats") { (request: APIGetStatsRequest, _) -> APIGetStatsResponse in
            let found = await bridge.perform { pool in pool.map { StatsQuery(table: $0.statTable).get(request.name, reset: request.reset) } }
            guard let found, let stat = found else {
                // The reference's answer for a counter that was never registered.
                throw RPCError(code: .unknown, message: "app/stats/command: \(request.name) not found.")
            }
            return APIGetStatsResponse.with { $0.stat = Self.stat(stat) }
        }
        router.registerUnary(services: names, method: "QueryStats") { (request: APIQueryStatsRequest, _) -> APIQueryStatsResponse in
            let result = await bridge.perform { pool -> Result<[StatsQuery.Stat], StatsQuery.QueryError>? in
                pool.map { pool in
                    Result { try StatsQuery(table: pool.statTable).query(pattern: request.pattern, patterns: request.patterns,
                                                                         regexp: request.regexp, reset: request.reset) }
                        .mapError { $0 as? StatsQuery.QueryError ?? .badPattern("\($0)") }
                }
            }
            switch result {
            case nil: throw Self.stopping
            case .failure(.badPattern(let p))?: throw RPCError(code: .invalidArgument, message: "invalid pattern \(p)")
            case .success(let stats)?: return APIQueryStatsResponse.with { $0.stat = stats.map(Self.stat) }
            }
        }
        // Xray's online users (WorkerPool+Online); unknown names get Xray's own NotFound answer.
        router.registerUnary(services: names, method: "GetStatsOnline") { (request: APIGetStatsRequest, _) -> APIGetStatsResponse in
            let found = await bridge.perform { pool in pool.map { $0.onlineAddresses(name: request.name) } }
            guard let found else { throw Self.stopping }
            guard let addresses = found else { throw RPCError(code: .notFound, message: "\(request.name) not found.") }
            return APIGetStatsResponse.with { $0.stat = Self.stat(.init(name: request.name, value: Int64(addresses.count))) }
        }
        router.registerUnary(services: names, method: "GetStatsOnlineIpList") {
            (request: APIGetStatsRequest, _) -> APIGetStatsOnlineIpListResponse in
            let found = await bridge.perform { pool in pool.map { $0.onlineAddresses(name: request.name) } }
            guard let found else { throw Self.stopping }
            guard let addresses = found else { throw RPCError(code: .notFound, message: "\(request.name) not found.") }
            return APIGetStatsOnlineIpListResponse.with {
                $0.name = request.name
                $0.ips = Dictionary(addresses.map { ($0.address, $0.lastSeen) }, uniquingKeysWith: max)
            }
        }
        router.registerUnary(services: names, method: "GetAllOnlineUsers") {
            (_: APIGetAllOnlineUsersRequest, _) -> APIGetAllOnlineUsersResponse in
            guard let users = await bridge.perform({ $0?.onlineUserNames() }) else { throw Self.stopping }
            return APIGetAllOnlineUsersResponse.with { $0.users = users }
        }
        router.registerUnary(services: names, method: "GetSysStats") { (_: APISysStatsRequest, _) -> APISysStatsResponse in
            guard let s = await bridge.perform({ $0?.sysStats() }) else { throw Self.stopping }
            return APISysStatsResponse.with {
                $0.uptime = s.uptime
                // No goroutines, no garbage collector: the processes, and their resident memory.
                $0.numGoroutine = s.processes
                $0.alloc = s.residentBytes
                $0.sys = s.residentBytes
            }
        }
    }

    static func stat(_ s: StatsQuery.Stat) -> APIStat {
        APIStat.with {
            $0.name = s.name
            $0.value = s.value
        }
    }

    static let stopping = RPCError(code: .unavailable, message: "vmessd is stopping")

    // MARK: HandlerService

    private func registerHandler<T: ServerTransport>(_ router: inout RPCRouter<T>) {
        let names = Self.names(.handler)
        let bridge = self.bridge
        router.registerUnary(services: names, method: "AlterInbound") { (request: APIAlterInboundRequest, _) -> APIAlterInboundResponse in
            let operation = try UserOperation(request.operation)
            let result = await bridge.perform { pool -> Result<Void, WorkerPool.APIFailure>? in
                guard let pool else { return nil }
                switch operation {
                case .add(let user): return pool.addRuntimeUser(user, inbound: request.tag)
                case .remove(let email): return pool.removeRuntimeUser(email: email, inbound: request.tag)
                }
            }
            try Self.check(result)
            return APIAlterInboundResponse()
        }
        router.registerUnary(services: names, method: "GetInboundUsers") { (request: APIGetInboundUserRequest, dialect) -> APIGetInboundUserResponse in
            let users = try Self.check(await bridge.perform { $0?.inboundUsers(request.tag) })
            return APIGetInboundUserResponse.with {
                $0.users = users.filter { request.email.isEmpty || $0.email == request.email }.map { UserOperation.message($0, dialect) }
            }
        }
        router.registerUnary(services: names, method: "GetInboundUsersCount") { (request: APIGetInboundUserRequest, _) -> APIGetInboundUsersCountResponse in
            let users = try Self.check(await bridge.perform { $0?.inboundUsers(request.tag) })
            return APIGetInboundUsersCountResponse.with { $0.count = Int64(users.count) }
        }
    }

    @discardableResult
    static func check<V>(_ result: Result<V, WorkerPool.APIFailure>?) throws -> V {
        switch result {
        case nil: throw stopping
        case .success(let value)?: return value
        case .failure(.failed(let why))?: throw RPCError(code: .internalError, message: why)
        case .failure(.rejected(let failure))?:
            let code: RPCError.Code
            switch failure {
            case .noInbound, .notFound: code = .notFound
            case .exists: code = .alreadyExists
            case .notVMess, .invalid: code = .invalidArgument
            }
            throw RPCError(code: code, message: failure.description)
        }
    }

    // MARK: LoggerService

    private func registerLogger<T: ServerTransport>(_ router: inout RPCRouter<T>) {
        let bridge = self.bridge
        router.registerUnary(services: Self.names(.logger), method: "RestartLogger") { (_: APIRestartLoggerRequest, _) -> APIRestartLoggerResponse in
            guard await bridge.perform({ pool -> Bool in
                pool?.reopenLogs(reason: "RestartLogger")
                return pool != nil
            }) else { throw Self.stopping }
            return APIRestartLoggerResponse()
        }
    }
}
