// swift-tools-version:6.1
import PackageDescription

// Micro benchmarks of vmessd's hot paths (issue 11), kept out of the main package so that neither
// the main build nor CI compiles the benchmark framework. Run: `swift package benchmark`.
let package = Package(
    name: "vmessd-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named: a path dependency is otherwise known by its folder (wt-perf, main...).
        .package(name: "vmessd", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // MallocInterposer: the malloc counters (mallocCountTotal) come from the interposer.
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "VMessMicro",
            dependencies: [
                .product(name: "Shared", package: "vmessd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/VMessMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v5]
)
