// One log format for both processes: single lines on stderr. Under systemd (stderr connected to the
// journal) each line starts with a syslog priority like "<4>" so journald records the level and the
// timestamp itself; anywhere else lines carry a UTC timestamp and the level as a word.

import Glibc
import Logging

public enum LogSetup {
    /// Installs the stderr handler process-wide. Call once, early (swift-log allows one bootstrap).
    /// `label` names the process in every line; `level` is the level of every Logger created afterwards.
    public static func bootstrap(label: String, level: Logger.Level) {
        let journal = stderrIsJournal()
        LoggingSystem.bootstrap { _ in
            var handler = LineLogHandler(label: label, style: journal ? .journal : .plain)
            handler.logLevel = level
            return handler
        }
    }

    /// systemd sets JOURNAL_STREAM="device:inode" of the stream it connected stdout/stderr to. It is
    /// inherited by children that may have redirected stderr, so compare it with stderr's own identity
    /// (as sd_journal_stream_fd(3) recommends) rather than trusting its mere presence.
    static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}

extension Logger.Level {
    /// Maps the config's V2Ray log level. V2Ray's default "warning" shows its own start-up and
    /// lifecycle lines, which vmessd logs at notice, so "warning" maps to notice; "none" keeps only
    /// critical lines (swift-log has no "off").
    public init(config level: LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .warning: self = .notice
        case .error: self = .error
        case .none: self = .critical
        }
    }
}
