// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for vmessd's parsers, one executable per parser (issue 7, "Fuzzing"). A package
// of its own so that the sanitizer flags, which must reach the parsers' modules for coverage, never
// touch the main build: scripts/fuzz.sh builds it with `-sanitize=fuzzer,address` into
// Fuzz/.build and runs the targets. Debug builds compile every module with -enable-testing, which is
// what lets the targets `@testable import` the parsers' internal types (no API made public for them).
// Each target's main.swift hands the process to libFuzzer's driver (see Sources/CFuzzerDriver for why
// libFuzzer's own main cannot be used under SwiftPM).

let nio = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let embedded = Target.Dependency.product(name: "NIOEmbedded", package: "swift-nio")
let webSocket = Target.Dependency.product(name: "NIOWebSocket", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let shared = Target.Dependency.product(name: "Shared", package: "vmessd")
let worker = Target.Dependency.product(name: "Worker", package: "vmessd")

/// Target name → what it needs besides FuzzSupport. Keep scripts/fuzz.sh's list in step.
let fuzzTargets: [(String, [Target.Dependency])] = [
    ("FuzzAEADHeader", [shared, nio]),
    ("FuzzLegacyHeader", [shared, nio]),
    ("FuzzBodyDecoder", [shared, nio]),
    ("FuzzMuxServer", [shared, worker, nio, embedded, logging]),
    ("FuzzMuxClient", [shared, worker, nio, embedded, logging]),
    ("FuzzWebSocket", [worker, nio, embedded, webSocket]),
    ("FuzzUpgradeRequest", [shared, worker, nio, embedded, logging]),
    ("FuzzUpgradeResponse", [shared, worker, nio, embedded]),
    ("FuzzSOCKS", [shared, worker, nio]),
    ("FuzzHTTPProxy", [shared, worker, nio]),
    ("FuzzConfig", [shared]),
    ("FuzzControlMessage", [shared]),
    ("FuzzAdminMessages", [shared]),
    ("FuzzGeoData", [shared]),
    ("FuzzSniffer", [shared]),
    ("FuzzDNSMessage", [shared, nio]),
    ("FuzzTCPHTTPHeader", [shared, worker, nio, embedded, logging]),
    ("FuzzProxyProtocol", [shared]),
    ("FuzzSwitchAccount", [shared]),
    ("FuzzGunHunk", [shared, nio]),
    ("FuzzUnixListen", [shared]),
    ("FuzzKCP", [shared, nio]),
]

let package = Package(
    name: "vmessd-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "vmessd", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Input reading, read cuts, seed writing and the drivers several targets share.
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", shared, worker, nio, embedded], path: "Sources/FuzzSupport"),
    ] + fuzzTargets.map { name, dependencies in
        .executableTarget(
            name: name,
            dependencies: ["FuzzSupport"] + dependencies,
            path: "Sources/\(name)"
        )
    },
    swiftLanguageModes: [.v5]
)
