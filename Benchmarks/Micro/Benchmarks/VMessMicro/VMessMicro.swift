import Benchmark

/// The hot paths of vmessd (issue 11): per chunk (seal/open), per connection (AuthID match, header
/// open + parse, response header, body coder set-up) and the KDF under both. Every benchmark reports
/// wall clock, throughput (operations per second) and mallocs per operation; no figure is asserted.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(1),
        maxIterations: 100_000
    )
    chunkBenchmarks()
    handshakeBenchmarks()
    kdfBenchmarks()
}
