// Process resources both binaries size themselves by: CPUs (one worker per CPU) and the open-file limit
// (each proxied connection costs two descriptors).

import Glibc

extension Posix {
    /// CPUs this process may run on: the affinity mask (which honours taskset, cgroup cpusets and
    /// systemd's CPUAffinity=), falling back to the online CPU count. Always at least 1.
    public static func availableCPUCount() -> Int {
        if let getaffinity = GNU.schedGetaffinity {
            // The mask is sized in bytes; start at glibc's cpu_set_t (1024 CPUs) and grow on EINVAL,
            // which the kernel returns when the buffer is smaller than its CPU mask.
            var bytes = MemoryLayout<cpu_set_t>.size
            while bytes <= 1 << 16 {
                var mask = [UInt8](repeating: 0, count: bytes)
                let result = mask.withUnsafeMutableBytes { getaffinity(0, bytes, $0.baseAddress) }
                if result == 0 {
                    // CPU_COUNT is a C macro Swift cannot import; count the mask's bits directly.
                    let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
                    if count > 0 { return count }
                    break
                }
                if errno != EINVAL { break }
                bytes *= 2
            }
        }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (a proxy runs out of descriptors long before
    /// it runs out of anything else). Returns the limit before and after.
    @discardableResult
    public static func raiseOpenFileLimit() throws -> (old: UInt64, new: UInt64) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        try retryingEINTR("getrlimit(RLIMIT_NOFILE)") { getrlimit(resource, &limit) }
        let old = UInt64(limit.rlim_cur)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            try retryingEINTR("setrlimit(RLIMIT_NOFILE)") { setrlimit(resource, &limit) }
        }
        return (old, UInt64(limit.rlim_cur))
    }
}
