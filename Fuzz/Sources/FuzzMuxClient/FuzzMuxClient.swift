import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker

// The Mux.Cool client connection (vmess-protocol.md §10.3) reading what a server sends: frames for
// its sessions, for sessions it never had or already ended, New/KeepAlive frames a server should not
// send, and garbage. Input: read-cut selector, set-up byte, frame stream.
//   set-up bits 0-2: sessions opened before the first read (ids 1…n; odd ones UDP);
//          bit 3: the local clients are full (not writable) during the reads;
//          bit 4: a local client finishes its upstream after the first read;
//          bit 5: the VMess connection ends with an error at the end (else cleanly).
// What the connection writes to its VMess link must parse as frames.

final class RecordingLink: UpstreamLink {
    var written = ByteBuffer()
    func write(_ buffer: ByteBuffer) { var b = buffer; written.writeBuffer(&b) }
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }
    func flush() {}
    func finishUpstream() {}
    func close() {}
    var isWritable: Bool { true }
    func downstreamWritabilityChanged() {}
}

final class LocalClient: DownstreamSink {
    var writable = true
    func downstream(_ buffer: inout ByteBuffer) { buffer.moveReaderIndex(to: buffer.writerIndex) }
    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
    func flushDownstream() {}
    func downstreamFinished(error: Bool) {}
    var downstreamWritable: Bool { writable }
    func upstreamWritabilityChanged() {}
}

let loop = EmbeddedEventLoop()
let logger = Logger(label: "fuzz")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let setup = input.byte()
    let pool = MuxClientPool(concurrency: 8, logger: logger)
    let connection = MuxClientConnection(pool: pool, loop: loop, logger: logger)
    let link = RecordingLink()
    connection.attach(link)
    var clients: [LocalClient] = []
    var sessions: [MuxClientSession] = []
    for i in 0..<Int(setup & 7) {
        let client = LocalClient()
        let udp = i % 2 == 1
        let destination = Destination(network: udp ? .udp : .tcp, address: udp ? .ipv4([8, 8, 8, 8]) : .domain("example.com"),
                                      port: udp ? 53 : 443)
        let session = connection.openSession(destination, sink: client)
        if udp { session.writeDatagram(ByteBuffer(bytes: [0x12, 0x34]), to: destination) } else { session.write(ByteBuffer(bytes: [0x47])) }
        clients.append(client)
        sessions.append(session)
    }
    for c in clients { c.writable = setup & 8 == 0 }
    for (i, piece) in Pieces.split(input.rest(), selector: selector).enumerated() {
        var buffer = ByteBuffer(bytes: piece)
        connection.downstream(&buffer)
        connection.flushDownstream()
        _ = connection.downstreamWritable
        if i == 0 && setup & 16 != 0 { sessions.first?.finishUpstream() }
        MuxSeeds.checkFrames(&link.written)
    }
    for c in clients { c.writable = true }
    connection.sessionBecameWritable()
    connection.downstreamFinished(error: setup & 32 != 0)
    loop.run()
    MuxSeeds.checkFrames(&link.written)
    for s in sessions { s.close() }
    loop.run()
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let setups: [[UInt8]] = [[0, 2], [1, 3], [5, 0x1A], [0, 0x22]]
        return MuxSeeds.frames().flatMap { f in setups.map { $0 + f } }
    }
    return 0
}
