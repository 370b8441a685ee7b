import Foundation

/// The seed corpus of a target comes from the target itself: with VMESSD_FUZZ_WRITE_SEEDS=DIR set,
/// LLVMFuzzerInitialize writes the target's seeds (built from the test vectors through the same
/// encoders the tests use) as DIR/seed-NNN and exits. scripts/fuzz.sh --seeds regenerates
/// Fuzz/Corpus this way, so the committed seeds stay in step with the wire formats.
public enum SeedWriter {
    public static let environmentKey = "VMESSD_FUZZ_WRITE_SEEDS"

    public static func writeIfRequested(_ makeSeeds: () -> [[UInt8]]) {
        guard let dir = ProcessInfo.processInfo.environment[environmentKey], !dir.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (i, seed) in makeSeeds().enumerated() {
                let path = (dir as NSString).appendingPathComponent(String(format: "seed-%03d", i))
                try Data(seed).write(to: URL(fileURLWithPath: path))
            }
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("cannot write seeds to \(dir): \(error)\n".utf8))
            exit(1)
        }
    }
}
