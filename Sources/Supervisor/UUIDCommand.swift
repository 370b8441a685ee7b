// `vmessd uuid`: a fresh user ID for a config.

import ArgumentParser
import Foundation

struct UUIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uuid",
        abstract: "Print a new random UUID (version 4) for a VMess user."
    )

    func run() throws {
        printNow(UUID().uuidString.lowercased())
    }
}
