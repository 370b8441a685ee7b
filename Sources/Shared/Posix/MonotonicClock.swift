#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC, the one clock every process of the machine shares: the shared-memory limit state
/// (UserLimitTable) compares stamps written by different workers.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    public static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }
}
