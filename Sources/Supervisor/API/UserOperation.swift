// AlterInbound's operation: a TypedMessage naming AddUserOperation or RemoveUserOperation under
// either package (v2ray.core.app.proxyman.command / xray.app.proxyman.command), with a vmess
// Account packed the same way inside the user.

import APIMessages
import Foundation
import GRPCCore
import Shared
import SwiftProtobuf

enum UserOperation: Sendable {
    case add(VMessUser)
    case remove(email: String)

    static let packages = ["v2ray.core.app.proxyman.command.", "xray.app.proxyman.command."]
    static let accountTypes = ["v2ray.core.proxy.vmess.Account", "xray.proxy.vmess.Account"]

    init(_ operation: APITypedMessage) throws {
        guard let package = Self.packages.first(where: { operation.type.hasPrefix($0) }) else {
            throw RPCError(code: .invalidArgument, message: "unknown operation type \(operation.type)")
        }
        do {
            switch operation.type.dropFirst(package.count) {
            case "AddUserOperation":
                let add = try APIAddUserOperation(serializedBytes: operation.value)
                self = .add(try Self.user(add.user))
            case "RemoveUserOperation":
                let remove = try APIRemoveUserOperation(serializedBytes: operation.value)
                self = .remove(email: remove.email)
            default:
                throw RPCError(code: .unimplemented, message: "operation \(operation.type) is not supported by vmessd")
            }
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .invalidArgument, message: "malformed \(operation.type): \(error)")
        }
    }

    static func user(_ message: APIUser) throws -> VMessUser {
        guard accountTypes.contains(message.account.type) else {
            throw RPCError(code: .invalidArgument, message: "vmessd serves vmess accounts only, not \(message.account.type)")
        }
        let account = try APIVMessAccount(serializedBytes: message.account.value)
        return VMessUser(id: account.id, alterId: Int(account.alterID), security: security(account.securitySettings.type),
                         level: Int(message.level), email: message.email)
    }

    static func security(_ type: APISecurityType) -> String? {
        switch type {
        case .aes128Gcm: "aes-128-gcm"
        case .chacha20Poly1305: "chacha20-poly1305"
        case .none: "none"
        case .zero: "zero"
        case .auto: "auto"
        default: nil
        }
    }

    /// A user as GetInboundUsers reports it, with the account type of the caller's package.
    static func message(_ user: VMessUser, _ dialect: APIDialect) -> APIUser {
        let account = APIVMessAccount.with {
            $0.id = user.id
            if dialect == .v2ray { $0.alterID = UInt32(clamping: user.alterId) }
        }
        return APIUser.with {
            $0.level = UInt32(clamping: user.level)
            $0.email = user.email ?? ""
            $0.account = APITypedMessage.with {
                $0.type = dialect == .v2ray ? accountTypes[0] : accountTypes[1]
                $0.value = (try? account.serializedData()) ?? Data()
            }
        }
    }
}
