// Reading a descriptor to its end: how a worker reads its bootstrap memfd (and a test reads pipes).

import Glibc

extension Posix {
    /// Reads from the descriptor's current offset until end of file.
    public static func readAll(fd: Int32) throws -> [UInt8] {
        var result: [UInt8] = []
        let chunk = 64 * 1024
        while true {
            let before = result.count
            result.reserveCapacity(before + chunk)
            // Grow by a chunk, read into the tail, then trim to what arrived.
            result.append(contentsOf: repeatElement(0, count: chunk))
            let n = try result.withUnsafeMutableBytes { buffer in
                try retryingEINTR("read(\(fd))") {
                    Glibc.read(fd, buffer.baseAddress! + before, chunk)
                }
            }
            result.removeLast(chunk - n)
            if n == 0 { return result }
        }
    }

    /// Writes the whole buffer, continuing after short writes.
    public static func writeAll(fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        try bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let n = try retryingEINTR("write(\(fd))") {
                    Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                }
                offset += n
            }
        }
    }
}
