// `vmessd ctl`: talks to a running supervisor over its admin socket. The admin socket comes in a later
// release; the command exists now so its syntax is stable and scripts fail loudly (exit 2).

import ArgumentParser

struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Control a running vmessd: status, reload, stop, stats, users."
    )

    static let actions = ["status", "reload", "stop", "stats", "users"]

    @Option(help: "Admin socket path.")
    var control: String?

    @Argument(help: "One of: status, reload, stop, stats, users.")
    var action: String

    @Argument(help: "Arguments of the action (users …).")
    var arguments: [String] = []

    func validate() throws {
        guard Self.actions.contains(action) else {
            throw ValidationError("unknown action \"\(action)\"; expected one of \(Self.actions.joined(separator: ", "))")
        }
    }

    func run() throws {
        printToStderr("vmessd ctl: the admin socket is not implemented yet")
        throw ExitStatus.notImplemented
    }
}
