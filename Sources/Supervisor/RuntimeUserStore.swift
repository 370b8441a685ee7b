// RuntimeUsers on disk: users.json in the state directory, written so that a crash at any point
// leaves either the old file or the new one, never a torn one: write a temporary file, fsync it,
// rename it over the old one, fsync the directory (the rename itself must reach the disk).

import Foundation
import Glibc
import Shared

struct RuntimeUserStore {
    static let fileName = "users.json"
    let directory: String
    var path: String { directory + "/" + Self.fileName }

    /// `vmessd.stateDirectory`, else the first of systemd's $STATE_DIRECTORY (StateDirectory=).
    static func locate(_ settings: DaemonSettings, environment: [String: String] = ProcessInfo.processInfo.environment) -> RuntimeUserStore? {
        if let directory = settings.stateDirectory { return RuntimeUserStore(directory: directory) }
        guard let list = environment["STATE_DIRECTORY"], let first = list.split(separator: ":").first, first.hasPrefix("/") else { return nil }
        return RuntimeUserStore(directory: String(first))
    }

    struct StoreError: Error, CustomStringConvertible { var description: String }

    /// The saved changes; none when the file does not exist yet.
    func load() throws -> RuntimeUsers {
        guard FileManager.default.fileExists(atPath: path) else { return RuntimeUsers() }
        let bytes = try FileContents.load(path, limit: 64 << 20)
        let users: RuntimeUsers
        do {
            users = try JSONDecoder().decode(RuntimeUsers.self, from: Data(bytes))
        } catch {
            throw StoreError(description: "\(path): not a vmessd users file: \(error)")
        }
        guard users.version == RuntimeUsers.currentVersion else {
            throw StoreError(description: "\(path): version \(users.version) (this vmessd reads \(RuntimeUsers.currentVersion))")
        }
        return users
    }

    func save(_ users: RuntimeUsers) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let bytes = Array(try encoder.encode(users)) + [UInt8(ascii: "\n")]
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixError(errno: errno, call: "open(\(temporary))") }
        do {
            try Posix.writeAll(fd: fd, bytes)
            guard fsync(fd) == 0 else { throw PosixError(errno: errno, call: "fsync(\(temporary))") }
            _ = close(fd)
        } catch {
            _ = close(fd)
            throw error
        }
        guard rename(temporary, path) == 0 else { throw PosixError(errno: errno, call: "rename(\(temporary))") }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            defer { _ = close(dir) }
            guard fsync(dir) == 0 else { throw PosixError(errno: errno, call: "fsync(\(directory))") }
        }
    }
}
