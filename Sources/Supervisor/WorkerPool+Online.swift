import Foundation
import Shared

// Xray's online statistics (StatsService GetStatsOnline, GetStatsOnlineIpList, GetAllOnlineUsers):
// the addresses the workers keep in shared memory (UserLimitTable) for users whose level has
// `statsUserOnline` (with `"stats": {}`), under Xray's names `user>>>EMAIL>>>online`. An address
// is there while a connection from it is open, and for up to UserLimitTable.sourceLease after.
extension WorkerPool {
    struct OnlineAddress: Equatable, Sendable {
        var address: String
        /// Unix seconds at which a worker last had it stamped (about now while connected).
        var lastSeen: Int64
    }

    /// The addresses of the user whose online entry is `name`; nil when there is no such entry (not
    /// a user with an email at a level that keeps them).
    func onlineAddresses(name: String) -> [OnlineAddress]? {
        guard let email = StatName.onlineEmail(name), onlineEmails.contains(email) else { return nil }
        return addresses(of: email)
    }

    /// The names of the online entries that have an address now.
    func onlineUserNames() -> [String] {
        onlineEmails.sorted().filter { !addresses(of: $0).isEmpty }.map(StatName.online)
    }

    /// Emails of the users served now (file and runtime users) whose level keeps addresses.
    private var onlineEmails: Set<String> {
        let switches = StatSwitches(config)
        var emails = Set<String>()
        for inbound in config.inbounds {
            guard case .vmess(let settings) = inbound.settings else { continue }
            for user in settings.users where switches.online(email: user.email, level: user.level) {
                if let email = user.email { emails.insert(email) }
            }
        }
        return emails
    }

    private func addresses(of email: String) -> [OnlineAddress] {
        // Workers count users under their email (VMessServerHandler's user key).
        guard let row = userTable.existingIndex(of: email) else { return [] }
        let now = MonotonicClock.milliseconds()
        let unixNow = Int64(Date().timeIntervalSince1970)
        return UserLimitTable(region: region).sources(user: row, nowMilliseconds: now).map {
            OnlineAddress(address: $0.source.text, lastSeen: unixNow - Int64((now &- min($0.lastSeen, now)) / 1000))
        }
    }
}
