import Foundation
import CShims
import Glibc
import Logging
import Shared
import Worker

// vmessd-worker --bootstrap-fd N [--binary-fd M]
// Spawned by the supervisor (never by hand): reads its bootstrap from the inherited memfd. The
// supervisor executes this binary through a descriptor of it (WorkerLauncher), passed as M, which
// is closed here; the kernel then names the process after that descriptor ("5"), so the name ps,
// top and pgrep show is set back to the binary's.

// Relay buffers are freed and reallocated at a high rate; without this glibc keeps trimming the
// heap top and faulting fresh zeroed pages back in (a quarter of the upload CPU in a profile).
vmessd_tune_malloc()

let arguments = CommandLine.arguments
func usage() -> Never {
    FileHandle.standardError.write("usage: vmessd-worker --bootstrap-fd N [--binary-fd M] (started by vmessd)\n".data(using: .utf8)!)
    exit(2)
}
guard let i = arguments.firstIndex(of: "--bootstrap-fd"), i + 1 < arguments.count, let fd = Int32(arguments[i + 1]) else { usage() }
if let j = arguments.firstIndex(of: "--binary-fd") {
    guard j + 1 < arguments.count, let binaryFD = Int32(arguments[j + 1]), binaryFD > 2 else { usage() }
    close(binaryFD)
}
_ = vmessd_set_process_name("vmessd-worker")
do {
    let bytes = try Posix.readAll(fd: fd)
    close(fd)
    let bootstrap = try WorkerBootstrap.decode(bytes)
    LogSetup.bootstrap(label: "vmessd-worker", level: Logger.Level(config: bootstrap.config.log.level))
    var logger = Logger(label: "vmessd-worker")
    logger[metadataKey: "worker.id"] = "\(bootstrap.workerID)"
    try WorkerProcess(bootstrap: bootstrap, logger: logger).run()
} catch let mismatch as WorkerBootstrap.BuildMismatch {
    FileHandle.standardError.write("vmessd-worker: \(mismatch)\n".data(using: .utf8)!)
    exit(WorkerBootstrap.BuildMismatch.exitStatus)
} catch {
    FileHandle.standardError.write("vmessd-worker: \(error)\n".data(using: .utf8)!)
    exit(1)
}
