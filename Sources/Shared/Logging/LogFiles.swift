// Log files that logrotate can rename under a running vmessd: `log.error` (the error log: what goes
// to stderr otherwise) and `log.access`. Every writer keeps writing to one descriptor number; a
// reopen opens the path afresh and dup2()s it onto that number, so the switch is atomic for every
// thread and no line is split between the old file and the new one. The supervisor reopens its own
// and tells every worker (SIGUSR1, the API's LoggerService.RestartLogger).

import Glibc

public enum LogFiles {
    /// Opens `path` for appending (created 0640) and puts it on `fd`.
    public static func redirect(_ fd: Int32, toAppend path: String) throws {
        let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard opened >= 0 else { throw PosixError(errno: errno, call: "open(\(path))") }
        defer { if opened != fd { _ = close(opened) } }
        guard opened == fd || dup2(opened, fd) >= 0 else { throw PosixError(errno: errno, call: "dup2(\(path))") }
    }

    /// Sends the process's stderr (its error log) to `config.errorPath` when the config names a file.
    public static func openErrorLog(_ config: LogConfig) throws {
        guard let path = config.errorPath, !path.isEmpty else { return }
        try redirect(STDERR_FILENO, toAppend: path)
    }
}
