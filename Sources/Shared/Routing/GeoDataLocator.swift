// Where geodata files (geoip.dat, geosite.dat, `ext:` files) are looked up: the places V2Ray and Xray
// look, in this order, so an operator's existing installation is found unchanged.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct GeoDataLocator: Sendable, Equatable {
    /// Searched in order; the first directory holding the file wins.
    public var directories: [String]

    public init(directories: [String]) {
        self.directories = directories
    }

    /// `$V2RAY_LOCATION_ASSET`, `$XRAY_LOCATION_ASSET`, the running binary's directory,
    /// `/usr/share/v2ray`, `/usr/local/share/v2ray`.
    public static func standard() -> GeoDataLocator {
        var directories: [String] = []
        for name in ["V2RAY_LOCATION_ASSET", "XRAY_LOCATION_ASSET"] {
            if let value = getenv(name), case let text = String(cString: value), !text.isEmpty {
                directories.append(text)
            }
        }
        if let binary = executableDirectory() { directories.append(binary) }
        directories += ["/usr/share/v2ray", "/usr/local/share/v2ray"]
        return GeoDataLocator(directories: directories)
    }

    /// The path of `file`, or nil. An absolute `file` (possible with `ext:/path/x.dat:tag`) is used as is.
    public func find(_ file: String) -> String? {
        if file.hasPrefix("/") { return access(file, R_OK) == 0 ? file : nil }
        for directory in directories {
            let path = directory.hasSuffix("/") ? directory + file : directory + "/" + file
            if access(path, R_OK) == 0 { return path }
        }
        return nil
    }

    /// Where `find` looks for `file`, for "not found" messages.
    func candidates(_ file: String) -> [String] {
        if file.hasPrefix("/") { return [file] }
        return directories.map { $0.hasSuffix("/") ? $0 + file : $0 + "/" + file }
    }

    private static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
