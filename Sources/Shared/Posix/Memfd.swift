// The bootstrap travels to a worker as an anonymous memory file: no temporary file on disk, no pipe
// that could fill up, and the worker can read it at its own pace.

import Glibc
import CShims

extension Posix {
    /// Creates a close-on-exec memfd holding `contents`, positioned at offset 0 so the reader can
    /// `readAll` it directly.
    ///
    /// With `seal`, the file is also sealed against writes, growing and shrinking, so a reader can
    /// trust that what it reads is what was written. Sealing needs a memfd created with
    /// MFD_ALLOW_SEALING; when `vmessd_memfd_create` does not allow it (EPERM) the file is returned
    /// unsealed, because the seal is defence in depth, not part of the protocol.
    public static func makeMemfd(name: String, contents: [UInt8], seal: Bool = false) throws -> Int32 {
        let fd = try retryingEINTR("memfd_create(\(name))") { vmessd_memfd_create(name) }
        do {
            try writeAll(fd: fd, contents)
            if seal {
                let seals = GNU.F_SEAL_SEAL | GNU.F_SEAL_SHRINK | GNU.F_SEAL_GROW | GNU.F_SEAL_WRITE
                do {
                    try retryingEINTR("fcntl(F_ADD_SEALS)") { fcntl(fd, GNU.F_ADD_SEALS, seals) }
                } catch let error as PosixError where error.errno == EPERM {
                    // Not created with MFD_ALLOW_SEALING: see the doc comment.
                }
            }
            try retryingEINTR("lseek(\(name))") { lseek(fd, 0, SEEK_SET) }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }
}
