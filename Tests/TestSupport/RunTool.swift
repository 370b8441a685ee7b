import Foundation

/// What a short command printed and how it ended.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// stdout then stderr, for messages.
    public var output: String { stdout + stderr }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a command to its end (`vmessd ctl`, v2ctl, a Python client), killing it after `timeout`.
/// Both pipes are drained as the command writes, so a chatty command cannot block on a full pipe.
public func runTool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: TimeInterval = 60) throws -> ToolResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let stderrReader = BackgroundTask<Data>("stderr-\(URL(fileURLWithPath: executable).lastPathComponent)") {
        err.fileHandleForReading.readDataToEndOfFile()
    }
    let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    let stderr = (try? stderrReader.value(timeout: 5, what: "stderr")) ?? Data()
    return ToolResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
}
