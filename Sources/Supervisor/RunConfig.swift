// What `vmessd run` checks beyond the parser, shared by the start and every reload: a config vmessd can
// actually serve, and the supervisor settings with the command-line flags folded in.

import Shared

enum RunConfig {
    /// Parses a config file for a reload: the reason as text instead of printing and exiting.
    static func load(path: String) -> Result<Config, ReloadError> {
        do {
            return .success(try ConfigParser.parse(fileAt: path))
        } catch let error as ConfigError {
            return .failure(ReloadError(description: error.description))
        } catch {
            return .failure(ReloadError(description: "\(path): \(error)"))
        }
    }

    /// Problems that make a parsed config unservable (one line each, naming the JSON path).
    static func problems(_ config: Config) -> [String] {
        var problems: [String] = []
        if config.inbounds.isEmpty {
            problems.append("no inbounds: vmessd needs at least one inbound to serve")
        }
        problems += unservedTransportProblems(config)
        problems += ListenerSet.duplicateAddresses(in: config)
        return problems
    }

    /// Flags, else the config's "vmessd" object, else defaults.
    static func settings(_ config: Config, overrides: WorkerPool.Overrides,
                         defaultDrainTimeout: Double = RunCommand.defaultDrainTimeout) -> Result<WorkerPool.Settings, ReloadError> {
        let workers = overrides.workers ?? config.daemon.workers ?? Posix.availableCPUCount()
        guard workers >= 1 else {
            return .failure(ReloadError(description: "\(config.sourceFile): vmessd.workers: must be at least 1, got \(workers)"))
        }
        guard workers <= 1024 else {
            return .failure(ReloadError(description: "\(config.sourceFile): vmessd.workers: at most 1024, got \(workers)"))
        }
        let drainTimeout = overrides.drainTimeout ?? config.daemon.drainTimeout ?? defaultDrainTimeout
        guard drainTimeout >= 0, drainTimeout.isFinite else {
            return .failure(ReloadError(description: "\(config.sourceFile): vmessd.drainTimeout: must be 0 or more seconds, got \(drainTimeout)"))
        }
        return .success(WorkerPool.Settings(workers: workers, drainTimeout: drainTimeout))
    }
}

struct ReloadError: Error, CustomStringConvertible {
    var description: String
}
