// Which config `vmessd run` (and `link`) uses when no -c is given, and turning a config file into a
// Config or the contract's exit status 23 with a readable reason.

import ArgumentParser
import Glibc
import Shared

struct ConfigLocator {
    enum Choice: Equatable {
        case file(String)
        /// No file anywhere: run the embedded demo config.
        case demo
    }

    /// Looked at in this order when no -c is given.
    static let defaultPaths = ["./config.json", "/etc/vmessd/config.json"]

    /// Injected so tests can decide which files "exist".
    var fileExists: (String) -> Bool = ConfigLocator.regularFileExists

    /// An explicit path always wins, even when missing (loading then reports it); otherwise the first
    /// default path that exists; otherwise the demo.
    func locate(explicit: String?) -> Choice {
        if let explicit { return .file(explicit) }
        for path in Self.defaultPaths where fileExists(path) { return .file(path) }
        return .demo
    }

    static func regularFileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR
    }
}

/// Parses a config file for a subcommand. On failure prints the reason (a missing file is named as
/// such, a ConfigError with its file, JSON path and reason) and exits with status 23.
func loadConfig(at path: String) throws -> Config {
    var info = stat()
    if stat(path, &info) != 0 {
        let reason = String(cString: strerror(errno))
        printToStderr("\(path): cannot read config file: \(reason)")
        throw ExitStatus.configError
    }
    do {
        return try ConfigParser.parse(fileAt: path)
    } catch let error as ConfigError {
        printToStderr(error.description)
        throw ExitStatus.configError
    } catch {
        printToStderr("\(path): \(error)")
        throw ExitStatus.configError
    }
}
