import CFuzzerDriver
import Foundation

/// Every target's main.swift: `FuzzerDriver.run(fuzz)`. libFuzzer then parses the command line
/// (corpus directories, -runs, -max_total_time, …) exactly as its own main would, calls
/// LLVMFuzzerInitialize if the target defines it, and runs `fuzz` on every input.
public enum FuzzerDriver {
    public static func run(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
    }
}
