// Reads a whole (small) file for the config layer: the config itself and TLS certificate/key files.
// Plain POSIX calls so that a failure can be reported with the system's own words for errno
// ("No such file or directory"), which is what an operator searches for.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum FileContents {
    public struct Failure: Error, Equatable {
        /// strerror text, or "file is larger than N bytes".
        var reason: String
    }

    /// The whole file, at most `limit` bytes (a config or PEM file larger than that is a mistake, and an
    /// unbounded read of e.g. /dev/zero would never end).
    public static func load(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(reason: errorText(errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: errorText(errno))
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit { throw Failure(reason: "file is larger than \(limit) bytes") }
        }
    }

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}
