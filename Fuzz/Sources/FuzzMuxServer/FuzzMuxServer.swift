import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker

// The Mux.Cool server (vmess-protocol.md §10) as the VMess inbound drives it: the request body's
// plaintext is a stream of frames; sessions open links on an outbound that here only records, and
// the targets answer as the fuzzer says. Input: read-cut selector, target behaviour, frame stream.
//   behaviour bit 0: after every read each open target sends a byte back (Keep frames, XUDP addresses);
//             bit 1: after the first read every target finishes (bit 2: with an error);
//             bit 3: the client's VMess stream ends after the last read (finishUpstream);
//             bit 4: the links report full (isWritable false) during the reads.
// Whatever the server writes back must itself parse as frames.

final class TargetLink: UpstreamLink {
    let destination: Destination
    weak var sink: DownstreamSink?
    var full = false
    init(_ destination: Destination, sink: DownstreamSink) {
        self.destination = destination
        self.sink = sink
    }
    func write(_ buffer: ByteBuffer) {}
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {}
    func flush() {}
    func finishUpstream() {}
    func close() { sink = nil }
    var isWritable: Bool { !full }
    func downstreamWritabilityChanged() {}
}

final class RecordingOutbound: Outbound {
    var links: [TargetLink] = []
    var tag: String? { nil }
    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        let link = TargetLink(destination, sink: sink)
        links.append(link)
        return link
    }
}

final class ClientSide: DownstreamSink {
    var written = ByteBuffer()
    var finished: Bool?
    func downstream(_ buffer: inout ByteBuffer) { written.writeBuffer(&buffer) }
    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
    func flushDownstream() {}
    func downstreamFinished(error: Bool) { finished = error }
    var downstreamWritable: Bool { true }
    func upstreamWritabilityChanged() {}
}

let loop = EmbeddedEventLoop()
let logger = Logger(label: "fuzz")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let behaviour = input.byte()
    let outbound = RecordingOutbound()
    let client = ClientSide()
    let server = MuxServer(sink: client, outbounds: OutboundSelector(outbounds: [outbound]), origin: RequestOrigin(),
                           loop: loop, level: LevelPolicy(), counters: WorkerCounters(), logger: logger)
    for (i, piece) in Pieces.split(input.rest(), selector: selector).enumerated() {
        for l in outbound.links { l.full = behaviour & 16 != 0 }
        server.write(ByteBuffer(bytes: piece))
        _ = server.isWritable
        server.flush()
        if behaviour & 1 != 0 {
            for l in outbound.links {
                var b = ByteBuffer(bytes: [UInt8(i & 0xFF)])
                l.sink?.downstream(&b)
                l.sink?.downstreamDatagram(ByteBuffer(bytes: [1]), source: l.destination)
            }
        }
        if i == 0 && behaviour & 2 != 0 {
            for l in outbound.links { l.sink?.downstreamFinished(error: behaviour & 4 != 0) }
        }
        MuxSeeds.checkFrames(&client.written)
        precondition(server.sessionCount <= MuxServer.maxSessions, "session table grew past its bound")
    }
    for l in outbound.links { l.full = false }
    server.downstreamWritabilityChanged()
    if behaviour & 8 != 0 { server.finishUpstream() }
    MuxSeeds.checkFrames(&client.written)
    server.close()
    loop.run()
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let behaviours: [[UInt8]] = [[0, 0], [1, 0x0B], [7, 0x13]]
        return MuxSeeds.frames().flatMap { f in behaviours.map { $0 + f } }
    }
    return 0
}
