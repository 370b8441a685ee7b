import Foundation
import Glibc
import Shared

/// V2Ray-style access log lines, one per accepted request:
///     2026/11/22 00:12:00 127.0.0.1:51234 accepted tcp:example.com:443 email: alice@example.com
/// Appended with O_APPEND so that every worker can write to the same file without interleaving
/// inside a line (one write per line, well under PIPE_BUF).
final class AccessLog {
    private let fd: Int32
    /// The file, when not stdout: reopened (same descriptor number) when logrotate has moved it.
    private let path: String?
    private let formatter: DateFormatter

    init?(config: LogConfig) {
        guard config.accessEnabled else { return nil }
        if let path = config.accessPath, !path.isEmpty {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { return nil }
            self.fd = fd
            self.path = path
        } else {
            self.fd = STDOUT_FILENO
            self.path = nil
        }
        formatter = DateFormatter()
        formatter.dateFormat = "yyyy/MM/dd HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
    }

    /// logrotate renamed the file: continue in a new one at the configured path.
    func reopen() throws {
        guard let path else { return }
        try LogFiles.redirect(fd, toAppend: path)
    }

    func accepted(from peer: String, network: String, destination: String, email: String?) {
        var line = "\(formatter.string(from: Date())) \(peer) accepted \(network):\(destination)"
        if let email { line += " email: \(email)" }
        line += "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }

    func rejected(from peer: String, reason: String) {
        let line = "\(formatter.string(from: Date())) \(peer) rejected vmess: \(reason)\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }
}
