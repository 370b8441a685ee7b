// `vmessd test -c FILE`: validate a config without serving it (exit 0 or 23).

import ArgumentParser
import Shared

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Validate a config file: prints \"configuration OK\" or every problem found, one per line (exit status 23)."
    )

    @Option(name: [.short, .customLong("config")], help: "Config file to validate.")
    var configFile: String

    func run() throws {
        let config = try loadConfig(at: configFile)
        // A valid file whose transports this release cannot serve yet: still valid (exit 0), but say
        // now what `run` would refuse, rather than surprise the operator at start.
        for problem in unservedTransportProblems(config) { printError("note: \(problem)") }
        printNow("configuration OK")
    }
}
