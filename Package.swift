// swift-tools-version:6.0
import PackageDescription

// One settings array for every target (house style). Swift 5 language mode: the data plane is
// event-loop-confined NIO code, where strict-concurrency checking adds noise but no safety.
// Release builds use plain -O: -Ounchecked would skip evaluating precondition() conditions, and
// a check that silently disappears in production is worse than the nanoseconds it saves.
let swiftSettings: [SwiftSetting] = []

let package = Package(
    name: "vmessd",
    // macOS 15: grpc-swift 2's floor (vmessd runs on Linux; this only satisfies the manifest).
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vmessd", targets: ["Supervisor"]),
        .executable(name: "vmessd-worker", targets: ["WorkerMain"]),
        .library(name: "Shared", targets: ["Shared"]),
        // The data plane as a library: the worker executable, the tests and the fuzz targets import it.
        .library(name: "Worker", targets: ["Worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // TLS for the ws/httpupgrade/tcp transports; see Sources/Worker/Transport/TLSContexts.swift for why.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // The V2Ray/Xray gRPC API the supervisor serves (Sources/Supervisor/API); message code
        // generated once from Protos/ and committed (scripts/generate-protos.sh).
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        // HTTP/2 for the gRPC ("gun") and h2 transports; see Sources/Worker/Transport/H2Pipeline.swift.
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // Prometheus metrics the supervisor serves (Sources/Supervisor/Metrics): swift-metrics types,
        // swift-prometheus's registry renders the text exposition format.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            path: "Sources/CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // DirectCiphers.c calls libcrypto (the built-in AEAD tables).
        .target(name: "CShims", path: "Sources/CShims", linkerSettings: [.linkedLibrary("crypto")]),
        .target(
            name: "Shared",
            dependencies: [
                "COpenSSL", "CShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Shared",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Worker",
            dependencies: [
                "Shared", "CShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // Transports (Sources/Worker/Transport).
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Sources/Worker",
            swiftSettings: swiftSettings
        ),
        // vmessd-worker: only argument handling; everything else is in the Worker library.
        .executableTarget(
            name: "WorkerMain",
            dependencies: ["Worker", "Shared", "CShims", .product(name: "Logging", package: "swift-log")],
            path: "Sources/WorkerMain",
            swiftSettings: swiftSettings
        ),
        // Generated protobuf messages of the gRPC API (Protos/*.proto; never edited by hand).
        .target(
            name: "APIMessages",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/APIMessages"
        ),
        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "Shared", "CShims", "CSystemd", "APIMessages",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Supervisor",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/SharedTests",
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["Supervisor", "Shared", .product(name: "Logging", package: "swift-log")],
            path: "Tests/SupervisorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "Shared", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // Transport tests (Tests/WorkerTests/Transport*.swift).
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Tests/WorkerTests",
            swiftSettings: swiftSettings
        ),
        // The harness both process-level suites use: spawning and reaping the binaries, bounded
        // blocking sockets, target servers, a test-owned NOTIFY_SOCKET. A regular target because test
        // targets cannot share sources.
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Shared", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InteropTests",
            dependencies: [
                "Shared", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/InteropTests",
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v5]
)
