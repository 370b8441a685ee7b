// Spawning a worker: the child must find its bootstrap at fd 3 and its listeners from fd 4, nothing
// else of ours, and a clean signal mask. A shell script stands in for vmessd-worker and reports what it got.

import Foundation
import Glibc
import Shared
import XCTest
@testable import Supervisor

final class WorkerLaunchTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "vmessd-launch-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A fake worker: records its arguments, descriptors, signal mask and the bootstrap bytes.
    private func writeFakeWorker() throws -> String {
        let path = directory + "/fake-worker"
        // The mask is read with the `read` builtin before anything is forked (dash blocks signals
        // while it waits for a child). The descriptors are listed by `ls` exec'd in the shell's place,
        // because the shell keeps private copies of redirected descriptors while a command runs;
        // the script's own descriptor is close-on-exec and goes away at that exec.
        let script = """
        #!/bin/sh
        out="\(directory)"
        while read -r key value; do
            if [ "$key" = "SigBlk:" ]; then echo "$value" > "$out/sigblk"; fi
        done < /proc/$$/status
        echo "$@" > "$out/args"
        cat <&3 > "$out/bootstrap"
        exec ls -l /proc/self/fd > "$out/fds"

        """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    private func sampleConfig(inbounds: Int) -> Config {
        let user = VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        return Config(sourceFile: "test.json", format: .v4, inbounds: (0..<inbounds).map {
            InboundConfig(listen: "127.0.0.1", port: 0, settings: .vmess(.init(users: [user])), jsonPath: "inbounds[\($0)]")
        }, outbounds: [])
    }

    private func waitForExit(_ pid: pid_t) -> ChildStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return ChildStatus(status)
    }

    func testChildGetsBootstrapAndListenersAtFixedDescriptors() throws {
        let config = sampleConfig(inbounds: 2)
        let listeners = try ListenerSet.open(config: config, perInbound: 2)
        defer { listeners.closeAll() }
        var given = listeners.listeners(forWorker: 1)
        // Exercise the collision path too: put one source exactly on a target number, if that is free.
        var parked: Int32 = -1
        if fcntl(WorkerLauncher.firstListenerFD, F_GETFD) == -1 {
            parked = dup2(given[0].fd, WorkerLauncher.firstListenerFD)
            _ = fcntl(parked, F_SETFD, FD_CLOEXEC)
            XCTAssertEqual(parked, WorkerLauncher.firstListenerFD)
            given[0].fd = parked
        }
        defer { if parked >= 0 { close(parked) } }

        // The child must start with nothing blocked even though we block SIGTERM here.
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }

        let launcher = WorkerLauncher(executable: try writeFakeWorker())
        let pid = try launcher.spawn(workerID: 1, generation: 7, config: config, listeners: given)
        XCTAssertEqual(waitForExit(pid), ChildStatus(0))

        let args = try String(contentsOfFile: directory + "/args", encoding: .utf8)
        XCTAssertEqual(args, "--bootstrap-fd 3\n")

        let bootstrap = try WorkerBootstrap.decode(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/bootstrap"))))
        XCTAssertEqual(bootstrap.workerID, 1)
        XCTAssertEqual(bootstrap.generation, 7)
        XCTAssertEqual(bootstrap.config, config)
        XCTAssertEqual(bootstrap.listeners, [.init(inbound: 0, fd: 4), .init(inbound: 1, fd: 5)])

        // `ls -l` lines end in "N -> target".
        var fds: [Int: String] = [:]
        for line in try String(contentsOfFile: directory + "/fds", encoding: .utf8).split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let arrow = words.firstIndex(of: "->"), arrow > 0, let fd = Int(words[arrow - 1]) else { continue }
            fds[fd] = words[(arrow + 1)...].joined(separator: " ")
        }
        XCTAssertTrue(fds[3]?.hasPrefix("/memfd:vmessd-bootstrap-1") ?? false, "\(fds)")
        // The child's fd 4 and 5 are the very sockets of worker 1 (same inode as ours).
        for (offset, listener) in listeners.listeners(forWorker: 1).enumerated() {
            let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(listener.fd)")
            XCTAssertEqual(fds[4 + offset], ours)
        }
        // Nothing else of ours leaked: the only other descriptor is the one `ls` reads /proc with.
        for (fd, target) in fds where fd > 5 {
            XCTAssertTrue(target.hasPrefix("/proc/"), "leaked fd \(fd) -> \(target)")
        }

        let mask = try String(contentsOfFile: directory + "/sigblk", encoding: .utf8)
        XCTAssertEqual(mask, "0000000000000000\n")
    }

    func testMissingWorkerBinaryIsReported() {
        setenv("VMESSD_WORKER", directory + "/nope", 1)
        defer { unsetenv("VMESSD_WORKER") }
        XCTAssertThrowsError(try WorkerLauncher.locateExecutable()) { error in
            XCTAssertTrue("\(error)".contains("VMESSD_WORKER"), "\(error)")
        }
    }
}

final class ListenerSetTests: XCTestCase {
    private func config(_ inbounds: [(String, Int)]) -> Config {
        let user = VMessUser(id: "b831381d-6324-4d53-ad4f-8cda48b30811")
        return Config(sourceFile: "t.json", format: .v4, inbounds: inbounds.enumerated().map { index, inbound in
            InboundConfig(listen: inbound.0, port: inbound.1, settings: .vmess(.init(users: [user])),
                          jsonPath: "inbounds[\(index)]")
        }, outbounds: [])
    }

    func testPortZeroGivesEveryWorkerTheSamePort() throws {
        let set = try ListenerSet.open(config: config([("127.0.0.1", 0), ("127.0.0.1", 0)]), perInbound: 3)
        defer { set.closeAll() }
        XCTAssertEqual(set.inbounds.count, 2)
        for inbound in set.inbounds {
            XCTAssertEqual(inbound.fds.count, 3)
            XCTAssertNotEqual(inbound.address.port, 0)
            for fd in inbound.fds { XCTAssertEqual(try Posix.localAddress(fd: fd), inbound.address) }
        }
        XCTAssertNotEqual(set.inbounds[0].address.port, set.inbounds[1].address.port)
        XCTAssertEqual(set.listeners(forWorker: 2).map(\.fd), [set.inbounds[0].fds[2], set.inbounds[1].fds[2]])
    }

    func testBusyAddressIsRefusedNotShared() throws {
        let other = try Posix.makeListeningSocket(host: "127.0.0.1", port: 0, reusePort: true)
        defer { try? Posix.close(other) }
        let port = try Posix.localAddress(fd: other).port
        XCTAssertThrowsError(try ListenerSet.open(config: config([("127.0.0.1", port)]), perInbound: 2)) { error in
            XCTAssertTrue("\(error)".hasPrefix("inbounds[0]: cannot listen on 127.0.0.1 port \(port): "), "\(error)")
        }
    }

    func testBadListenAddressNamesInbound() {
        XCTAssertThrowsError(try ListenerSet.open(config: config([("127.0.0.1", 0), ("localhost", 0)]), perInbound: 1)) { error in
            XCTAssertTrue("\(error)".hasPrefix("inbounds[1]: "), "\(error)")
        }
    }

    func testDuplicateAddresses() {
        let problems = ListenerSet.duplicateAddresses(in: config([("0.0.0.0", 443), ("127.0.0.1", 443), ("0.0.0.0", 443), ("0.0.0.0", 0), ("0.0.0.0", 0)]))
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].hasPrefix("inbounds[2]: listens on 0.0.0.0:443 like inbounds[0]"), "\(problems)")
    }
}

final class ChildStatusTests: XCTestCase {
    func testDecoding() {
        XCTAssertEqual(ChildStatus(0).description, "exit 0")
        XCTAssertTrue(ChildStatus(0).isCleanExit)
        XCTAssertEqual(ChildStatus(3 << 8).description, "exit 3")
        XCTAssertEqual(ChildStatus(SIGKILL).description, "killed by SIGKILL")
        XCTAssertEqual(ChildStatus(SIGSEGV | 0x80).description, "killed by SIGSEGV") // core dumped
        XCTAssertFalse(ChildStatus(SIGTERM).isCleanExit)
    }
}
