// Dynamic port (V2Ray v4: a vmess inbound's `detour.to` names another vmess inbound, usually on a port
// range, whose `default` gives the level and alterId). Checked and resolved once every inbound is
// read: the source inbound learns the target's ports, and the target gets one user per user of each
// inbound that detours to it, with the id `UserID.detour(tag:)` derives (the same in every worker).

extension ConfigParser {
    static func applyDetours(_ inbounds: inout [InboundConfig], file: String) throws {
        var errors = ConfigErrorCollector()
        var derived: [String: [VMessUser]] = [:]  // target tag → users to add
        for i in inbounds.indices {
            guard case .vmess(var settings) = inbounds[i].settings, let tag = settings.detourTo else { continue }
            let path = inbounds[i].jsonPath + ".settings.detour.to"
            let targets = inbounds.filter { $0.tag == tag }
            _ = try errors.attempt {
                guard let first = targets.first else {
                    throw ConfigError(file: file, path: path, reason: "no inbound has tag \(JSONC.quote(tag))")
                }
                guard case .vmess(let target) = first.settings else {
                    throw ConfigError(file: file, path: path, reason: "the detour inbound \(JSONC.quote(tag)) is not a vmess inbound")
                }
                guard target.detourTo == nil else {
                    throw ConfigError(file: file, path: path, reason: "the detour inbound \(JSONC.quote(tag)) has a detour itself")
                }
                guard first.unixSocket == nil else {
                    throw ConfigError(file: file, path: path, reason: "the detour inbound \(JSONC.quote(tag)) listens on a Unix socket, which has no port to tell clients")
                }
                guard first.tag != inbounds[i].tag else {
                    throw ConfigError(file: file, path: path, reason: "an inbound cannot detour to itself")
                }
                settings.detour = DetourTarget(tag: tag, ports: targets.map(\.port), alterId: target.defaultAlterId,
                                               level: target.defaultLevel)
                inbounds[i].settings = .vmess(settings)
                for user in settings.users {
                    guard let id = UserID(text: user.id) else { continue }
                    derived[tag, default: []].append(VMessUser(id: id.detour(tag: tag).text, alterId: target.defaultAlterId,
                                                               level: target.defaultLevel, email: user.email))
                }
            }
        }
        for i in inbounds.indices {
            guard case .vmess(var settings) = inbounds[i].settings else { continue }
            let own = Set(settings.users.map(\.id))
            // A user of a port range is seen once per port; one id is one user.
            var added = Set<String>()
            for user in derived[inbounds[i].tag ?? ""] ?? [] where !own.contains(user.id) && added.insert(user.id).inserted {
                settings.users.append(user)
            }
            inbounds[i].settings = .vmess(settings)
            if settings.users.isEmpty {
                _ = try errors.attempt {
                    throw ConfigError(file: file, path: inbounds[i].jsonPath + ".settings",
                                      reason: "a vmess inbound needs at least one client (or to be the target of a detour)")
                }
            }
        }
        try errors.finish()
    }
}
