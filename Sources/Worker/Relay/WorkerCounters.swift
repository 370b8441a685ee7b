/// Per-worker counters (read by the supervisor's stats in a later issue; logged at exit now).
final class WorkerCounters {
    var accepted = 0
    var active = 0
    var rejected: [String: Int] = [:]
    var bytesUp = 0
    var bytesDown = 0
    var perUserUp: [String: Int] = [:]
    var perUserDown: [String: Int] = [:]
}
