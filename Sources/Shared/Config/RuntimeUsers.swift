// Users added and removed while vmessd runs (the gRPC API's HandlerService, `vmessd ctl users`),
// kept per inbound tag and applied over the config file's users at every start and reload, so an
// added user survives reloads and (with a state directory) restarts, and a removed one stays removed.
//
// Pure: the supervisor owns one, persists it (RuntimeUserStore) and tells the workers each change.
// File format (users.json in the state directory; JSON, one object):
//   {"version": 1, "inbounds": {"TAG": {"added": [{"id": UUID, "alterId": 0, "level": 0,
//                                                  "email": "..."}], "removed": ["email", ...]}}}

public struct RuntimeUsers: Codable, Equatable, Sendable {
    public struct Changes: Codable, Equatable, Sendable {
        public var added: [VMessUser] = []
        /// Emails of config-file users taken out.
        public var removed: [String] = []
        public init() {}
        var isEmpty: Bool { added.isEmpty && removed.isEmpty }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case noInbound(String)
        case notVMess(String)
        case invalid(String)
        case exists(String)
        case notFound(String)

        public var description: String {
            switch self {
            case .noInbound(let tag): "no inbound has tag \(JSONC.quote(tag))"
            case .notVMess(let tag): "inbound \(JSONC.quote(tag)) is not a vmess inbound"
            case .invalid(let why): why
            case .exists(let email): "user \(email) already exists"
            case .notFound(let email): "user \(email) not found"
            }
        }
    }

    public static let currentVersion = 1
    public var version = RuntimeUsers.currentVersion
    public var inbounds: [String: Changes] = [:]

    public init() {}

    /// The effective users of the vmess inbounds tagged `tag` in `config` (as read from the file,
    /// before these changes), nil when there is no such inbound.
    func fileUsers(_ tag: String, in config: Config) throws -> [VMessUser] {
        let tagged = config.inbounds.filter { $0.tag == tag }
        guard let first = tagged.first else { throw Failure.noInbound(tag) }
        guard case .vmess(let settings) = first.settings else { throw Failure.notVMess(tag) }
        return settings.users
    }

    /// The users of inbound `tag` once these changes apply.
    public func users(_ tag: String, in config: Config) throws -> [VMessUser] {
        let changes = inbounds[tag] ?? Changes()
        return try fileUsers(tag, in: config).filter { !changes.removed.contains($0.email ?? "") } + changes.added
    }

    /// Adds `user` (its email names it for removal, so it must have one, unique in the inbound).
    public mutating func add(_ user: VMessUser, toInbound tag: String, in config: Config) throws {
        guard let email = user.email, !email.isEmpty else { throw Failure.invalid("a user added at runtime needs an email (it is removed by it)") }
        guard email.utf8.count <= StatName.maximumPartBytes, tag.utf8.count <= ControlMessage.maximumNameBytes else {
            throw Failure.invalid("email or tag too long (at most \(StatName.maximumPartBytes) bytes)")
        }
        guard let id = UserID(text: user.id) else { throw Failure.invalid("\(JSONC.quote(user.id)) is not a UUID") }
        guard (0...65_535).contains(user.alterId), (0...Int(UInt32.max)).contains(user.level) else {
            throw Failure.invalid("alterId must be 0-65535 and level 0-\(UInt32.max)")
        }
        let current = try users(tag, in: config)
        if current.contains(where: { $0.email == email }) { throw Failure.exists(email) }
        var canonical = user
        canonical.id = id.text
        inbounds[tag, default: Changes()].added.append(canonical)
    }

    /// Removes the user with `email` from inbound `tag`, whether it came from the file or was added.
    public mutating func remove(email: String, fromInbound tag: String, in config: Config) throws {
        let current = try users(tag, in: config)
        guard current.contains(where: { $0.email == email }) else { throw Failure.notFound(email) }
        var changes = inbounds[tag] ?? Changes()
        changes.added.removeAll { $0.email == email }
        if try fileUsers(tag, in: config).contains(where: { $0.email == email }), !changes.removed.contains(email) {
            changes.removed.append(email)
        }
        inbounds[tag] = changes.isEmpty ? nil : changes
    }

    /// `config` with the users of every vmess inbound tagged `tag` edited by `edit` (a running
    /// generation's config, changed in place as the change reaches its workers).
    public static func editing(_ config: Config, tag: String, _ edit: (inout [VMessUser]) -> Void) -> Config {
        var out = config
        for (i, inbound) in config.inbounds.enumerated() where inbound.tag == tag {
            guard case .vmess(var settings) = inbound.settings else { continue }
            edit(&settings.users)
            out.inbounds[i].settings = .vmess(settings)
        }
        return out
    }

    /// `config` with these changes applied to every vmess inbound they name. Changes for a tag the
    /// config no longer has are kept (the inbound may come back) but apply to nothing.
    public func applied(to config: Config) -> Config {
        var out = config
        for (i, inbound) in config.inbounds.enumerated() {
            guard let tag = inbound.tag, let changes = inbounds[tag], case .vmess(var settings) = inbound.settings else { continue }
            var users = settings.users.filter { !changes.removed.contains($0.email ?? "") }
            for user in changes.added where !users.contains(where: { $0.email == user.email }) { users.append(user) }
            settings.users = users
            out.inbounds[i].settings = .vmess(settings)
        }
        return out
    }
}
