// The `vmessd` command line. `run` is the default subcommand, so a plain `vmessd` serves.

import ArgumentParser
import Glibc
import Shared

@main
struct VMessd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmessd",
        abstract: "A VMess proxy server: one supervisor, one worker process per CPU.",
        subcommands: [RunCommand.self, TestCommand.self, UUIDCommand.self, LinkCommand.self, CtlCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// Exit statuses shared by the subcommands (part of the command-line contract).
enum ExitStatus {
    static let runtimeFailure = ExitCode(1)
    static let notImplemented = ExitCode(2)
    static let configError = ExitCode(23)
}

/// Writes one line to stderr as it is: for messages that already name their subject (ConfigError).
func printToStderr(_ line: String) {
    try? Posix.writeAll(fd: STDERR_FILENO, Array((line + "\n").utf8))
}

/// A command-line diagnostic before (or instead of) logging: "vmessd: message".
func printError(_ message: String) {
    printToStderr("vmessd: \(message)")
}

/// Prints to stdout and flushes at once: `run` keeps going after printing the demo UUID and link, and a
/// pipe reader must see them now, not when the buffer fills.
func printNow(_ line: String) {
    print(line)
    fflush(stdout)
}
