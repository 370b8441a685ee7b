import Glibc

/// CPU features that decide "auto" (read once per process).
enum CPUFeatures {
    /// amd64: AES-NI and PCLMULQDQ (what Go's crypto uses for fast GCM); arm64: AES and PMULL.
    static let acceleratesAESGCM: Bool = {
        guard let text = readCPUInfo() else { return false }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") || line.hasPrefix("Features") {
            let words = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }))
            if words.contains("aes") && (words.contains("pclmulqdq") || words.contains("pmull")) { return true }
        }
        return false
    }()

    private static func readCPUInfo() -> String? {
        let fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
