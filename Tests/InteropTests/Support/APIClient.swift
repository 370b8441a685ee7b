// Real clients of the gRPC API: Debian's `v2ctl api` (StatsService, LoggerService) and a Python
// client on PyPI's grpcio (HandlerService and Xray's methods), which encodes the protobuf messages
// itself from the wire facts (field numbers), independently of vmessd's generated code.

import Foundation
import TestSupport
import XCTest

struct APIClient {
    let server: String
    let workDir: URL

    struct CallError: Error, CustomStringConvertible {
        var description: String
        /// gRPC status name as the client reports it ("NOT_FOUND", "ALREADY_EXISTS", …).
        var code: String?
    }

    // MARK: v2ctl

    /// `v2ctl api --server=… Service.Method 'request'`: stdout on success.
    func v2ctl(_ method: String, _ request: String) throws -> String {
        let result = try Self.run("/usr/bin/v2ctl", ["api", "--server=\(server)", method, request])
        guard result.status == 0 else { throw CallError(description: "v2ctl \(method): \(result.output)") }
        return result.output
    }

    /// Every counter QueryStats returns (v2ctl prints protobuf text; a zero value is left out).
    func queryStats(pattern: String = "", reset: Bool = false) throws -> [String: Int64] {
        Self.parseStats(try v2ctl("StatsService.QueryStats", "pattern: \"\(pattern)\" reset: \(reset)"))
    }

    static func parseStats(_ text: String) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for block in text.components(separatedBy: "stat:").dropFirst() {
            guard let nameStart = block.range(of: "name: \""), let nameEnd = block[nameStart.upperBound...].range(of: "\"") else { continue }
            let name = String(block[nameStart.upperBound..<nameEnd.lowerBound])
            var value: Int64 = 0
            if let v = block.range(of: "value: ") {
                value = Int64(block[v.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            out[name] = value
        }
        return out
    }

    // MARK: Python (grpcio)

    /// Runs one HandlerService call; the script prints JSON on success.
    func handler(_ arguments: [String], dialect: String = "v2ray") throws -> Any {
        let script = workDir.appendingPathComponent("api_client.py")
        if !FileManager.default.fileExists(atPath: script.path) {
            try Self.python.write(to: script, atomically: true, encoding: .utf8)
        }
        let result = try Self.run("/usr/bin/env", ["python3", script.path, server, dialect] + arguments)
        let text = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let json = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        if result.status != 0 {
            let code = (json as? [String: Any])?["error"] as? String
            throw CallError(description: "api_client \(arguments.joined(separator: " ")): \(text)", code: code)
        }
        guard let json else { throw CallError(description: "api_client: not JSON: \(text)") }
        return json
    }

    func addUser(inbound: String, email: String, id: String, level: Int = 0, dialect: String = "v2ray") throws {
        _ = try handler(["add", inbound, email, id, String(level)], dialect: dialect)
    }

    func removeUser(inbound: String, email: String, dialect: String = "v2ray") throws {
        _ = try handler(["remove", inbound, email], dialect: dialect)
    }

    /// Xray's GetInboundUsers: (email, id) of each user.
    func users(inbound: String) throws -> [[String]] {
        (try handler(["users", inbound], dialect: "xray") as? [[String]]) ?? []
    }

    func userCount(inbound: String) throws -> Int {
        (try handler(["count", inbound], dialect: "xray") as? Int) ?? -1
    }

    /// Xray's GetStatsOnline: how many addresses the online entry `name` has.
    func onlineCount(_ name: String) throws -> Int { (try handler(["online", name], dialect: "xray") as? Int) ?? -1 }

    /// Xray's GetStatsOnlineIpList: address → last seen (unix seconds).
    func onlineAddresses(_ name: String) throws -> [String: Int] {
        (try handler(["iplist", name], dialect: "xray") as? [String: Int]) ?? [:]
    }

    /// Xray's GetAllOnlineUsers.
    func onlineUsers() throws -> [String] { (try handler(["onlineusers"], dialect: "xray") as? [String]) ?? [] }

    /// Runs a command to its end: exit status and what it printed.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try runTool(executable, arguments)
        return (result.status, result.output)
    }

    static let python = #"""
import json, sys
import grpc

server, dialect, command = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
prefix = "v2ray.core." if dialect == "v2ray" else "xray."

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field_bytes(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data

def field_varint(number, value):
    return varint(number << 3) + varint(value)

def read_varint(data, i):
    value, shift = 0, 0
    while True:
        b = data[i]; i += 1
        value |= (b & 0x7F) << shift; shift += 7
        if b < 0x80:
            return value, i

def fields(data):
    i, out = 0, []
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            length, i = read_varint(data, i)
            value = data[i:i + length]; i += length
        else:
            raise ValueError("wire type %d" % wire)
        out.append((number, value))
    return out

def typed(name, value):
    return field_bytes(1, name) + field_bytes(2, value)

channel = grpc.insecure_channel(server)
def call(method, body):
    f = channel.unary_unary("/" + prefix + "app.proxyman.command.HandlerService/" + method,
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return f(body, timeout=10)

def call_stats(method, body):
    f = channel.unary_unary("/" + prefix + "app.stats.command.StatsService/" + method,
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return f(body, timeout=10)

try:
    if command == "add":
        tag, email, uid, level = args
        account = field_bytes(1, uid)
        if dialect == "v2ray":
            account += field_varint(2, 0)
        account += field_bytes(3, field_varint(1, 3))  # SecurityConfig{type: AES128_GCM}
        user = field_varint(1, int(level)) + field_bytes(2, email) + field_bytes(3, typed(prefix + "proxy.vmess.Account", account))
        call("AlterInbound", field_bytes(1, tag) + field_bytes(2, typed(prefix + "app.proxyman.command.AddUserOperation", field_bytes(1, user))))
        print("true")
    elif command == "remove":
        tag, email = args
        call("AlterInbound", field_bytes(1, tag) + field_bytes(2, typed(prefix + "app.proxyman.command.RemoveUserOperation", field_bytes(1, email))))
        print("true")
    elif command == "bulk":
        # Adds COUNT users as fast as the server answers; stops quietly when the server is gone.
        import uuid
        tag, stem, count = args[0], args[1], int(args[2])
        added = 0
        for k in range(count):
            account = field_bytes(1, str(uuid.uuid4())) + field_bytes(3, field_varint(1, 3))
            user = field_varint(1, 0) + field_bytes(2, "%s-%d" % (stem, k)) + field_bytes(3, typed(prefix + "proxy.vmess.Account", account))
            try:
                call("AlterInbound", field_bytes(1, tag) + field_bytes(2, typed(prefix + "app.proxyman.command.AddUserOperation", field_bytes(1, user))))
            except grpc.RpcError:
                break
            added += 1
        print(json.dumps(added))
    elif command == "users":
        reply = call("GetInboundUsers", field_bytes(1, args[0]))
        users = []
        for number, user in fields(reply):
            if number != 1: continue
            email, uid = "", ""
            for n, v in fields(user):
                if n == 2: email = v.decode()
                if n == 3:
                    for tn, tv in fields(v):
                        if tn == 2:
                            for an, av in fields(tv):
                                if an == 1: uid = av.decode()
            users.append([email, uid])
        print(json.dumps(users))
    elif command == "count":
        reply = call("GetInboundUsersCount", field_bytes(1, args[0]))
        print(json.dumps(dict(fields(reply)).get(1, 0)))
    elif command == "online":
        reply = call_stats("GetStatsOnline", field_bytes(1, args[0]))
        stat = dict(fields(reply)).get(1, b"")
        print(json.dumps(dict(fields(stat)).get(2, 0)))
    elif command == "iplist":
        reply = call_stats("GetStatsOnlineIpList", field_bytes(1, args[0]))
        ips = {}
        for number, entry in fields(reply):
            if number != 2: continue
            kv = dict(fields(entry))
            ips[kv.get(1, b"").decode()] = kv.get(2, 0)
        print(json.dumps(ips))
    elif command == "onlineusers":
        reply = call_stats("GetAllOnlineUsers", b"")
        print(json.dumps([v.decode() for n, v in fields(reply) if n == 1]))
    else:
        raise SystemExit("unknown command " + command)
except grpc.RpcError as e:
    print(json.dumps({"error": e.code().name, "details": e.details()}))
    sys.exit(2)
"""#
}
