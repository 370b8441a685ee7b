// What one scrape reports, gathered on the supervisor's main loop (WorkerPool.metricsSample) from
// shared memory and the worker table, then rendered on the metrics thread (MetricsExporter). Plain
// values: the main loop's part is a read of the region's tables, as for `vmessd ctl stats`.

import Shared

struct MetricsSample: Sendable {
    struct Worker: Sendable {
        var index: Int
        var generation: Int
        var state: String
        var connections: UInt64
        var lag: WorkerLag
    }

    var userLabels = false
    /// Every worker since the region was created (retired workers' totals included).
    var accepted: UInt64 = 0
    var bytesUp: UInt64 = 0
    var bytesDown: UInt64 = 0
    var acceptErrors: UInt64 = 0
    /// The reasons table as it is: handshake rejections, and bounds hit (prefix `dropped_`).
    var reasons: [CounterTable.Entry] = []
    var replayEvictions: UInt64 = 0
    /// The metrics table: per inbound, outbound and user (MetricName).
    var metrics: [CounterTable.Entry] = []
    /// The per-user traffic table (only with userLabels).
    var users: [CounterTable.Entry] = []
    /// By SkewHistogram.Outcome.
    var skew: [SkewHistogram.Snapshot] = []
    var workers: [Worker] = []
    var generation = 0
}
