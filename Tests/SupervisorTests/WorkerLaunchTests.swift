// Spawning a worker: the child must find its bootstrap at fd 3 and its control socket at fd 4, nothing
// else of ours (the listening sockets travel in the attach message, not by inheritance), a clean
// signal mask and no systemd per-process variables. A shell script stands in for vmessd-worker and
// reports what it got.

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

    /// A fake worker: records its arguments, descriptors, signal mask, environment and the bootstrap.
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
        echo "${NOTIFY_SOCKET:-unset} ${LISTEN_FDS:-unset} ${WATCHDOG_USEC:-unset} ${VMESSD_LAUNCH_TEST:-unset}" > "$out/env"
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

    func testChildGetsBootstrapAndControlSocketOnly() throws {
        let config = sampleConfig(inbounds: 2)
        let listeners = try ListenerSet.open(config: config, perInbound: 2)
        defer { listeners.closeAll() }
        let region = try SharedRegion.create(.init(slotCount: 4, userCapacity: 4, reasonCapacity: 4,
                                                   replayStripes: 1, replayBucketsPerStripe: 1, replayBucketSlots: 4))

        // The child must start with nothing blocked even though we block SIGTERM here, and without
        // the systemd variables we were given.
        var blocked = sigset_t(), previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1)
        setenv("WATCHDOG_USEC", "1000000", 1)
        setenv("VMESSD_LAUNCH_TEST", "kept", 1)
        defer { unsetenv("NOTIFY_SOCKET"); unsetenv("WATCHDOG_USEC"); unsetenv("VMESSD_LAUNCH_TEST") }

        let launcher = try WorkerLauncher(executable: try writeFakeWorker())
        let spawned = try launcher.spawn(workerID: 1, generation: 7, config: config, listeners: listeners.listeners(forWorker: 1),
                                         sharedMemory: region.descriptor, sharedMemorySlot: 3)
        defer { close(spawned.control) }
        XCTAssertEqual(waitForExit(spawned.pid), ChildStatus(0))
        XCTAssertNotEqual(fcntl(spawned.control, F_GETFL) & O_NONBLOCK, 0, "the supervisor end is polled")
        XCTAssertNotEqual(fcntl(spawned.control, F_GETFD) & FD_CLOEXEC, 0)

        XCTAssertEqual(try String(contentsOfFile: directory + "/args", encoding: .utf8), "--bootstrap-fd 3 --binary-fd 5\n")
        XCTAssertEqual(try String(contentsOfFile: directory + "/env", encoding: .utf8), "unset unset unset kept\n")

        let bootstrap = try WorkerBootstrap.decode(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/bootstrap"))))
        XCTAssertEqual(bootstrap.workerID, 1)
        XCTAssertEqual(bootstrap.generation, 7)
        XCTAssertEqual(bootstrap.config, config)
        XCTAssertEqual(bootstrap.controlFD, 4)
        XCTAssertEqual(bootstrap.sharedMemorySlot, 3)
        XCTAssertEqual(bootstrap.listeners, [.init(inbound: 0, fd: -1), .init(inbound: 1, fd: -1)])

        // `ls -l` lines end in "N -> target".
        var fds: [Int: String] = [:]
        for line in try String(contentsOfFile: directory + "/fds", encoding: .utf8).split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let arrow = words.firstIndex(of: "->"), arrow > 0, let fd = Int(words[arrow - 1]) else { continue }
            fds[fd] = words[(arrow + 1)...].joined(separator: " ")
        }
        XCTAssertTrue(fds[3]?.hasPrefix("/memfd:vmessd-bootstrap-1") ?? false, "\(fds)")
        XCTAssertTrue(fds[4]?.hasPrefix("socket:[") ?? false, "\(fds)")
        // The binary it was started from (the real worker closes this one at once).
        XCTAssertEqual(fds[5], directory + "/fake-worker", "\(fds)")
        // Nothing else of ours leaked: the only other descriptor is the one `ls` reads /proc with.
        for (fd, target) in fds where fd > 5 {
            XCTAssertTrue(target.hasPrefix("/proc/"), "leaked fd \(fd) -> \(target)")
        }
        XCTAssertEqual(try String(contentsOfFile: directory + "/sigblk", encoding: .utf8), "0000000000000000\n")
    }

    /// The attach message as a worker receives it: the shared-memory memfd and the very listening
    /// sockets of its position (same kernel objects, new descriptor numbers).
    func testAttachCarriesSharedMemoryAndListenersOverSCMRights() throws {
        let config = sampleConfig(inbounds: 2)
        let listeners = try ListenerSet.open(config: config, perInbound: 2)
        defer { listeners.closeAll() }
        let region = try SharedRegion.create(.init(slotCount: 4, userCapacity: 4, reasonCapacity: 4,
                                                   replayStripes: 1, replayBucketsPerStripe: 1, replayBucketSlots: 4))
        let (ours, theirs) = try Posix.makeSeqpacketPair()
        defer { close(ours); close(theirs) }
        let given = listeners.listeners(forWorker: 1).map(\.fd)
        let message = ControlMessage.attach(listeners: given.count, sharedMemory: true)
        try Posix.sendMessage(ours, message.encoded(), descriptors: [region.descriptor!] + given)

        let received = try XCTUnwrap(try Posix.receiveMessage(theirs))
        defer { for fd in received.descriptors { close(fd) } }
        XCTAssertFalse(received.truncated)
        XCTAssertEqual(try ControlMessage.decode(received.bytes), message)
        XCTAssertEqual(received.descriptors.count, message.descriptorCount)
        func identity(_ fd: Int32) -> [UInt64] {
            var info = stat()
            fstat(fd, &info)
            return [UInt64(info.st_dev), UInt64(info.st_ino)]
        }
        XCTAssertEqual(received.descriptors.map(identity), ([region.descriptor!] + given).map(identity))
        for fd in received.descriptors {
            XCTAssertFalse(([region.descriptor!] + given).contains(fd), "a new descriptor number, not ours")
            XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "received close-on-exec")
        }
        // The worker maps the same region.
        let mapped = try SharedRegion.attach(fd: received.descriptors[0])
        XCTAssertEqual(mapped.layout, region.layout)

        // Nothing else is pending.
        XCTAssertNil(try Posix.receiveMessage(theirs, nonBlocking: true))
    }

    /// How a worker notices that the supervisor is gone: end of file on its control socket.
    func testControlSocketEndOfFile() throws {
        let (ours, theirs) = try Posix.makeSeqpacketPair()
        defer { close(theirs) }
        try Posix.sendMessage(ours, ControlMessage.heartbeat(sequence: 9).encoded())
        close(ours)
        let first = try XCTUnwrap(try Posix.receiveMessage(theirs))
        XCTAssertEqual(try ControlMessage.decode(first.bytes), .heartbeat(sequence: 9))
        XCTAssertTrue(try XCTUnwrap(try Posix.receiveMessage(theirs)).isEndOfFile)
    }

    /// The binary found at start is the one every spawn runs, even once another file is installed at
    /// its path (an upgrade in progress) or the path is gone.
    func testSpawnsTheBinaryOpenedAtStartNotTheOneNowAtItsPath() throws {
        let config = sampleConfig(inbounds: 1)
        let listeners = try ListenerSet.open(config: config, perInbound: 1)
        defer { listeners.closeAll() }
        let path = try writeFakeWorker()
        let launcher = try WorkerLauncher(executable: path)
        // An install renames a new file over the path; this one would say so and fail.
        let replacement = path + ".new"
        try "#!/bin/sh\necho replaced > \"\(directory)/replaced\"\nexit 7\n".write(toFile: replacement, atomically: true, encoding: .utf8)
        chmod(replacement, 0o755)
        XCTAssertEqual(rename(replacement, path), 0)
        for round in 0..<2 {
            let spawned = try launcher.spawn(workerID: 0, generation: 1, config: config, listeners: listeners.listeners(forWorker: 0),
                                             sharedMemory: nil, sharedMemorySlot: nil)
            close(spawned.control)
            XCTAssertEqual(waitForExit(spawned.pid), ChildStatus(0), "round \(round)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/replaced"), "round \(round)")
            XCTAssertEqual(try String(contentsOfFile: directory + "/args", encoding: .utf8), "--bootstrap-fd 3 --binary-fd 5\n")
            try FileManager.default.removeItem(atPath: directory + "/args")
            // Second round: no file at the path at all.
            XCTAssertEqual(unlink(path), round == 0 ? 0 : -1)
        }
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
            for fd in inbound.fds { XCTAssertEqual(ListenerAddress.tcp(try Posix.localAddress(fd: fd)), inbound.address) }
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

    func testReloadPlanKeepsSocketsOfUnchangedAddressesAndRetiresTheRest() throws {
        let first = try ListenerSet.plan(config: config([("127.0.0.1", 0), ("127.0.0.1", 0)]), workers: 2, previous: nil, passed: [])
        XCTAssertEqual(first.opened.count, 4)
        XCTAssertEqual(first.retired, [])
        let keptPort = first.set.inbounds[0].address.port
        let keptFDs = first.set.inbounds[0].fds

        // Inbound 0 stays (same configured address: port 0 with the same path), inbound 1 leaves,
        // a new one arrives, and there are now three workers.
        let second = try ListenerSet.plan(config: config([("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0)]).dropping(1),
                                          workers: 3, previous: first.set, passed: [])
        XCTAssertEqual(second.set.inbounds[0].address.port, keptPort)
        XCTAssertEqual(Array(second.set.inbounds[0].fds[0..<2]), keptFDs, "the very same sockets")
        XCTAssertEqual(second.set.inbounds[0].fds.count, 3, "one more socket joins the group")
        XCTAssertEqual(Set(second.retired), Set(first.set.inbounds[1].fds))
        XCTAssertEqual(second.opened.count, 1 + 3)
        XCTAssertTrue(second.opened.allSatisfy { !keptFDs.contains($0) })
        second.commit()
        for fd in first.set.inbounds[1].fds { XCTAssertEqual(fcntl(fd, F_GETFD), -1, "retired socket closed") }

        // Back to one worker: the surplus sockets of a kept address stay open (closing them would
        // reset what is queued on them), and the one worker serves all of them.
        let third = try ListenerSet.plan(config: config([("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0)]).dropping(1),
                                         workers: 1, previous: second.set, passed: [])
        XCTAssertEqual(third.set.inbounds.map(\.fds.count), [3, 3])
        XCTAssertEqual(third.opened, [])
        XCTAssertEqual(third.retired, [])
        XCTAssertEqual(third.set.listeners(forWorker: 0).map(\.fd), third.set.inbounds.flatMap(\.fds))
        third.commit()
        XCTAssertEqual(third.set.steer(), [])

        // Two workers over three sockets: 0 and 2 to the first, 1 to the second.
        let fourth = try ListenerSet.plan(config: config([("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0)]).dropping(1),
                                          workers: 2, previous: third.set, passed: [])
        let fds = fourth.set.inbounds[0].fds
        XCTAssertEqual(fourth.set.listeners(forWorker: 0).filter { $0.inbound == 0 }.map(\.fd), [fds[0], fds[2]])
        XCTAssertEqual(fourth.set.listeners(forWorker: 1).filter { $0.inbound == 0 }.map(\.fd), [fds[1]])
        fourth.commit()
        fourth.set.closeAll()
    }

    func testAbandonedPlanClosesOnlyWhatItOpened() throws {
        let first = try ListenerSet.plan(config: config([("127.0.0.1", 0)]), workers: 1, previous: nil, passed: [])
        defer { first.set.closeAll() }
        let next = try ListenerSet.plan(config: config([("127.0.0.1", 0), ("127.0.0.1", 0)]), workers: 1, previous: first.set, passed: [])
        next.abandon()
        XCTAssertNotEqual(fcntl(first.set.inbounds[0].fds[0], F_GETFD), -1, "the kept socket survives")
        for fd in next.opened { XCTAssertEqual(fcntl(fd, F_GETFD), -1) }
    }

    func testPassedSocketsComeFirstAndAreNeverClosed() throws {
        // A passed socket as systemd-socket-activate makes it: no SO_REUSEPORT.
        let passedFD = try Posix.makeListeningSocket(host: "127.0.0.1", port: 0, reusePort: false)
        defer { try? Posix.close(passedFD) }
        let address = try Posix.localAddress(fd: passedFD)
        let passed = [PassedSocket(fd: passedFD, name: "vmessd.socket", address: address)]
        let plan = try ListenerSet.plan(config: config([("127.0.0.1", address.port)]), workers: 3, previous: nil, passed: passed)
        XCTAssertEqual(plan.notes, [])
        let entry = plan.set.inbounds[0]
        XCTAssertTrue(entry.activated)
        XCTAssertEqual(entry.passed, [passedFD])
        XCTAssertEqual(entry.fds.count, 3, "one socket per worker: the passed one, then two joined to its group")
        XCTAssertEqual(entry.fds[0], passedFD)
        XCTAssertEqual(Set(plan.opened), Set(entry.fds.dropFirst()))
        for fd in entry.fds { XCTAssertEqual(try Posix.localAddress(fd: fd), address) }
        XCTAssertEqual(plan.set.listeners(forWorker: 0).map(\.fd), [passedFD])
        XCTAssertEqual(Set(plan.set.ownedDescriptors), Set(entry.fds.dropFirst()))

        // A reload with the same address keeps everything, with fewer workers too.
        let same = try ListenerSet.plan(config: config([("127.0.0.1", address.port)]), workers: 2, previous: plan.set, passed: passed)
        XCTAssertEqual(same.opened, [])
        XCTAssertEqual(same.set.inbounds[0].fds, entry.fds)
        XCTAssertEqual(same.retired, [])
        same.commit()

        // The address leaves the config: the joined sockets are retired, the passed one never.
        let next = try ListenerSet.plan(config: config([("127.0.0.1", 0)]), workers: 1, previous: same.set, passed: passed)
        XCTAssertEqual(Set(next.retired), Set(entry.fds.dropFirst()))
        next.commit()
        next.set.closeAll()
        XCTAssertNotEqual(fcntl(passedFD, F_GETFD), -1, "the passed socket stays open")
    }

    /// The steering program on a group: new connections go only to the sockets it names.
    func testSteeringSendsNewConnectionsToTheFirstSockets() throws {
        let set = try ListenerSet.open(config: config([("127.0.0.1", 0)]), perInbound: 3)
        defer { set.closeAll() }
        let fds = set.inbounds[0].fds
        try Posix.steerReusePortGroup(fds[0], to: [0])
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0..<24 { clients.append(try connectLoopback(port: set.inbounds[0].address.port)) }
        func queued(_ fd: Int32) throws -> Int {
            try Posix.setNonBlocking(fd)
            var n = 0
            while let accepted = try Posix.accept(fd) { close(accepted); n += 1 }
            return n
        }
        XCTAssertEqual(try queued(fds[1]) + queued(fds[2]), 0, "nothing reaches the sockets past the first")
        XCTAssertEqual(try queued(fds[0]), 24)

        // Widening again spreads them over all three.
        try Posix.steerReusePortGroup(fds[0], to: [0, 1, 2])
        for _ in 0..<60 { clients.append(try connectLoopback(port: set.inbounds[0].address.port)) }
        let counts = try fds.map(queued)
        XCTAssertEqual(counts.reduce(0, +), 60)
        XCTAssertTrue(counts.allSatisfy { $0 > 0 }, "\(counts)")

        // Around a position (the jump table): nothing reaches the middle socket.
        try Posix.steerReusePortGroup(fds[0], to: [0, 2])
        for _ in 0..<60 { clients.append(try connectLoopback(port: set.inbounds[0].address.port)) }
        let around = try fds.map(queued)
        XCTAssertEqual(around[1], 0, "\(around)")
        XCTAssertEqual(around.reduce(0, +), 60)
        XCTAssertTrue(around[0] > 0 && around[2] > 0, "\(around)")

        // ListenerSet's steering: around worker position 0, and back to all when no position is left.
        XCTAssertEqual(set.steer(around: [0]), [])
        for _ in 0..<30 { clients.append(try connectLoopback(port: set.inbounds[0].address.port)) }
        let withoutFirst = try fds.map(queued)
        XCTAssertEqual(withoutFirst[0], 0, "\(withoutFirst)")
        XCTAssertEqual(withoutFirst.reduce(0, +), 30)
        XCTAssertEqual(set.steer(around: [0, 1, 2]), [])
        for _ in 0..<60 { clients.append(try connectLoopback(port: set.inbounds[0].address.port)) }
        XCTAssertTrue(try fds.map(queued).allSatisfy { $0 > 0 }, "nobody accepting: every socket queues")
    }

    private func connectLoopback(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw PosixError(errno: errno, call: "connect") }
        return fd
    }

    /// Unix-socket inbounds: one socket for every worker, kept by name across a reload, its file
    /// removed when it leaves the config; a stale file is replaced, a live socket or a plain file is not.
    func testUnixSocketInbounds() throws {
        let dir = "/tmp/vmessd-ls-\(UUID().uuidString.prefix(8))"
        XCTAssertEqual(mkdir(dir, 0o755), 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func unixConfig(_ addresses: [UnixListenAddress]) -> Config {
            var c = config(addresses.map { _ in ("127.0.0.1", 0) })
            for (i, address) in addresses.enumerated() {
                c.inbounds[i].unixSocket = address
                c.inbounds[i].listen = address.description
            }
            return c
        }
        let path = UnixListenAddress(kind: .path, name: "\(dir)/a.sock", mode: 0o640)
        let abstract = UnixListenAddress(kind: .paddedAbstract, name: "vmessd-ls-\(UUID().uuidString.prefix(8))")
        let first = try ListenerSet.plan(config: unixConfig([path, abstract]), workers: 3, previous: nil, passed: [])
        XCTAssertEqual(first.set.inbounds.map(\.fds.count), [1, 1])
        XCTAssertEqual(first.set.listeners(forWorker: 2).map(\.fd), first.set.inbounds.map { $0.fds[0] })
        var info = stat()
        XCTAssertEqual(lstat(path.name, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o640)
        XCTAssertEqual(try Posix.unixSunPath(fd: first.set.inbounds[1].fds[0]), abstract.sunPath)
        XCTAssertEqual(first.set.steer(), [], "Unix groups are not steered")

        // A second vmessd on the same path is refused while the first answers.
        XCTAssertThrowsError(try ListenerSet.plan(config: unixConfig([path]), workers: 1, previous: nil, passed: [])) { error in
            XCTAssertTrue("\(error)".contains("another process answers on it"), "\(error)")
        }

        // Reload: the path stays (same socket), the abstract one leaves (closed at commit).
        let second = try ListenerSet.plan(config: unixConfig([path]), workers: 1, previous: first.set, passed: [])
        XCTAssertEqual(second.set.inbounds[0].fds, first.set.inbounds[0].fds)
        XCTAssertEqual(second.retired, first.set.inbounds[1].fds)
        XCTAssertEqual(second.retiredFiles, [])
        second.commit()

        // Stop: the file goes, and only while it is still ours.
        second.set.closeAll()
        XCTAssertNotEqual(lstat(path.name, &info), 0, "removed at stop")

        // A plain file at the path is never deleted.
        XCTAssertTrue(FileManager.default.createFile(atPath: path.name, contents: Data("keep".utf8)))
        XCTAssertThrowsError(try ListenerSet.plan(config: unixConfig([path]), workers: 1, previous: nil, passed: []))
        XCTAssertEqual(FileManager.default.contents(atPath: path.name), Data("keep".utf8))
    }

    func testDuplicateAddresses() {
        let problems = ListenerSet.duplicateAddresses(in: config([("0.0.0.0", 443), ("127.0.0.1", 443), ("0.0.0.0", 443), ("0.0.0.0", 0), ("0.0.0.0", 0)]))
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems[0].hasPrefix("inbounds[2]: listens on 0.0.0.0:443 like inbounds[0]"), "\(problems)")
    }
}

private extension Config {
    /// The same config without inbound `index` (later inbounds keep their JSON paths, as they would
    /// after editing the file only if the path named them; here the paths travel with the inbounds).
    func dropping(_ index: Int) -> Config {
        var copy = self
        copy.inbounds.remove(at: index)
        return copy
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
