import Logging
import NIOCore
import Shared

/// The server side of Mux.Cool (vmess-protocol.md §10) over one VMess connection, including Xray's
/// XUDP frames (§10.4). To the VMess inbound it is just another `UpstreamLink`: the plaintext of the
/// request body goes in as a byte stream of frames; each session opens its own link on the outbound,
/// and what the targets send comes back as Keep/End frames through the VMess response body.
///
/// Backpressure is per connection, as in the reference: while any session's link is full the whole
/// mux connection stops reading (a slow session delays its siblings, but nothing grows unbounded).
/// The same holds for what the client itself makes the server write (End frames for unknown or
/// refused sessions): those are coalesced per read, flushed, and while the client does not read them
/// the server does not read the client either. Connects in flight are bounded per connection.
final class MuxServer: UpstreamLink {
    /// Sessions open at once per mux connection (v2fly clients use at most 128 per connection).
    static let maxSessions = 256
    /// Outbound connects in flight per mux connection: past it the client is not read until one
    /// completes, and a New frame that arrives in the same read is refused (End with error).
    static let maxConnecting = 32
    /// Bytes of one incomplete frame held between reads: metadata ≤ 512 + data ≤ 65535.
    static let maxBuffered = 2 + 512 + 2 + 65_535

    private weak var sink: DownstreamSink?
    private let outbounds: OutboundSelector
    /// The client connection's inbound, user and address: every session is routed with it.
    private let origin: RequestOrigin
    private let loop: EventLoop
    private let level: LevelPolicy
    private let logger: Logger
    let counters: WorkerCounters
    private var sessions: [UInt16: MuxServerSession] = [:]
    private var cumulation: ByteBuffer?
    private var upstreamFinished = false
    private var failed = false
    private let allocator = ByteBufferAllocator()
    /// End frames the server owes the client, coalesced while one read is parsed.
    private var control: ByteBuffer?
    /// Control frames were written while the client was not reading: hold its reads.
    private var heldForDownstream = false
    private(set) var connectingCount = 0

    /// Largest datagram sent to the client in one frame (ClientLimits.udpDatagramToClient).
    let udpToClient: Int

    init(sink: DownstreamSink, outbounds: OutboundSelector, origin: RequestOrigin, loop: EventLoop, level: LevelPolicy, counters: WorkerCounters,
         udpToClient: Int = ClientLimits.defaultUDPToClient, logger: Logger) {
        self.sink = sink
        self.udpToClient = udpToClient
        self.outbounds = outbounds
        self.origin = origin
        self.loop = loop
        self.level = level
        self.counters = counters
        self.logger = logger
    }

    var sessionCount: Int { sessions.count }

    // MARK: UpstreamLink (client → targets)

    func write(_ buffer: ByteBuffer) {
        guard !failed else { return }
        var buf: ByteBuffer
        if var c = cumulation {
            cumulation = nil
            var b = buffer
            c.writeBuffer(&b)
            buf = c
        } else {
            buf = buffer
        }
        do {
            while let frame = try MuxFrame.parse(&buf) { try handle(frame) }
        } catch {
            fail("\(error)")
            return
        }
        flushControl()
        if buf.readableBytes > 0 {
            guard buf.readableBytes <= Self.maxBuffered else { return fail("frame too large") }
            cumulation = buf
        }
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }

    func flush() {
        for s in sessions.values { s.link?.flush() }
    }

    /// The client's VMess stream ended: every session's upstream ends with it.
    func finishUpstream() {
        upstreamFinished = true
        for s in sessions.values { s.finishUpstream(error: false) }
        finishIfIdle()
    }

    func close() {
        failed = true
        for s in sessions.values { s.link?.close() }
        sessions.removeAll()
        connectingCount = 0
        cumulation = nil
        control = nil
    }

    /// The client's connection has been quiet, so every session on it has.
    func releaseIdleMemory() {
        for s in sessions.values { s.link?.releaseIdleMemory() }
    }

    var isWritable: Bool {
        if heldForDownstream || connectingCount >= Self.maxConnecting { return false }
        return sessions.values.allSatisfy { $0.link?.isWritable ?? true }
    }

    func downstreamWritabilityChanged() {
        if heldForDownstream, sink?.downstreamWritable == true {
            heldForDownstream = false
            sink?.upstreamWritabilityChanged()
        }
        for s in sessions.values { s.link?.downstreamWritabilityChanged() }
    }

    // MARK: frames from the client

    private func handle(_ f: MuxFrame) throws {
        switch f.status {
        case .new:
            if let old = sessions.removeValue(forKey: f.sessionID) {
                // A re-used id: the old session ends here, its connect (if still in flight) with it.
                connectFinished(old)
                old.link?.close()
            }
            guard let network = f.network, let address = f.address else {
                return queueControl(MuxFrame(sessionID: f.sessionID, status: .end, option: .error))
            }
            guard sessions.count < Self.maxSessions else {
                logger.debug("mux: session refused", metadata: ["limit": "\(Self.maxSessions) sessions"])
                counters.drop(.muxSessionLimit)
                return queueControl(MuxFrame(sessionID: f.sessionID, status: .end, option: .error))
            }
            guard connectingCount < Self.maxConnecting else {
                logger.debug("mux: session refused", metadata: ["limit": "\(Self.maxConnecting) connects in flight"])
                counters.drop(.muxConnectLimit)
                return queueControl(MuxFrame(sessionID: f.sessionID, status: .end, option: .error))
            }
            let udp = network == .udp
            let dest = Destination(network: udp ? .udp : .tcp, address: address, port: f.port)
            // Xray's XUDP: session 0 (or a GlobalID) means per-packet addresses both ways.
            let session = MuxServerSession(id: f.sessionID, destination: dest, xudp: udp && (f.sessionID == 0 || f.globalID != nil),
                                           server: self)
            sessions[f.sessionID] = session
            let link = outbounds.open(dest, origin: origin, sink: session, loop: loop, level: level)
            session.link = link
            if link.isConnecting {
                session.connecting = true
                connectingCount += 1
            }
            if let data = f.data, data.readableBytes > 0 { session.send(data, frame: f) }
        case .keep:
            guard let session = sessions[f.sessionID] else {
                // Unknown session: tell the client it is gone; the data is discarded (§10.3).
                counters.drop(.muxUnknownSession)
                return queueControl(MuxFrame(sessionID: f.sessionID, status: .end))
            }
            if let data = f.data, data.readableBytes > 0 { session.send(data, frame: f) }
        case .end:
            // Data attached to End is discarded, as the reference does.
            guard let session = sessions[f.sessionID] else { return }
            session.finishUpstream(error: f.option.contains(.error))
            removeIfDone(session)
        case .keepAlive:
            break
        }
    }

    /// A session's connect completed, failed or was abandoned.
    func connectFinished(_ s: MuxServerSession) {
        guard s.connecting, !(s.link?.isConnecting ?? false) || sessions[s.id] !== s else { return }
        s.connecting = false
        connectingCount -= 1
    }

    private func queueControl(_ frame: MuxFrame) {
        if control == nil { control = allocator.buffer(capacity: 256) }
        frame.write(into: &control!)
    }

    /// Sends the End frames owed for this read in one write, flushed; a client that does not read
    /// them stops being read.
    private func flushControl() {
        guard var out = control, let sink else { return }
        control = nil
        sink.downstream(&out)
        sink.flushDownstream()
        if !sink.downstreamWritable { heldForDownstream = true }
    }

    private func fail(_ reason: String) {
        logger.debug("mux: aborting connection: \(reason)")
        close()
        sink?.downstreamFinished(error: true)
    }

    // MARK: frames to the client

    func writeFrames(_ frames: [MuxFrame]) {
        guard let sink, !failed else { return }
        var out = allocator.buffer(capacity: frames.reduce(0) { $0 + 32 + ($1.data?.readableBytes ?? 0) })
        for f in frames { f.write(into: &out) }
        sink.downstream(&out)
    }

    func flushDownstream() { sink?.flushDownstream() }
    var downstreamWritable: Bool { sink?.downstreamWritable ?? false }
    func upstreamWritabilityChanged() { sink?.upstreamWritabilityChanged() }

    func removeIfDone(_ s: MuxServerSession) {
        guard s.upstreamDone && s.downstreamDone, sessions[s.id] === s else { return }
        sessions.removeValue(forKey: s.id)
        connectFinished(s)
        s.link?.close()
        finishIfIdle()
    }

    /// Once the client has finished and every session is gone, the VMess response ends too.
    private func finishIfIdle() {
        if upstreamFinished && sessions.isEmpty { sink?.downstreamFinished(error: false) }
    }
}

/// One Mux.Cool session: a sink for its target's data, turning it into Keep frames.
final class MuxServerSession: DownstreamSink {
    let id: UInt16
    let destination: Destination
    let xudp: Bool
    weak var server: MuxServer?
    var link: UpstreamLink?
    /// Counted in the server's connects in flight.
    var connecting = false
    private(set) var upstreamDone = false
    private(set) var downstreamDone = false

    init(id: UInt16, destination: Destination, xudp: Bool, server: MuxServer) {
        self.id = id
        self.destination = destination
        self.xudp = xudp
        self.server = server
    }

    /// Client data for this session: a stream slice, or one datagram (XUDP: to the frame's address).
    func send(_ data: ByteBuffer, frame: MuxFrame) {
        guard !upstreamDone, let link else { return }
        if destination.network == .udp {
            // One frame, one datagram, whatever its size (the frame's 16-bit length bounds it): the
            // reference's 2048-byte limit would make one large datagram the end of every session on
            // the connection. The outbound drops what the network cannot carry.
            var to = destination
            if xudp, let a = frame.address { to = Destination(network: .udp, address: a, port: frame.port) }
            link.writeDatagram(data, to: to)
        } else {
            link.write(data)
        }
    }

    func finishUpstream(error: Bool) {
        guard !upstreamDone else { return }
        upstreamDone = true
        if error {
            link?.close()
            downstreamDone = true
        } else {
            link?.finishUpstream()
        }
    }

    // MARK: DownstreamSink (target → client)

    func downstream(_ buffer: inout ByteBuffer) {
        guard !downstreamDone, let server else { return }
        var frames: [MuxFrame] = []
        while buffer.readableBytes > 0 {
            let slice = buffer.readSlice(length: min(buffer.readableBytes, MuxFrame.maxStreamSlice))!
            frames.append(MuxFrame(sessionID: id, status: .keep, data: slice))
        }
        server.writeFrames(frames)
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
        guard !downstreamDone, let server else { return }
        // UDP: drop rather than queue when the client is slow (as plain VMess UDP does).
        guard server.downstreamWritable else { return server.counters.drop(.udpSlowClient) }
        // Larger than the client can take whole (ClientLimits): dropped whole, never cut.
        guard buffer.readableBytes <= server.udpToClient else { return server.counters.drop(.udpTooLarge) }
        var f = MuxFrame(sessionID: id, status: .keep, data: buffer)
        if xudp {
            f.network = .udp
            f.address = source.address
            f.port = source.port
        }
        server.writeFrames([f])
    }

    func flushDownstream() { server?.flushDownstream() }

    func downstreamFinished(error: Bool) {
        guard !downstreamDone, let server else { return }
        downstreamDone = true
        if connecting {
            // A failed connect: the slot is free again, and the client may be read again.
            server.connectFinished(self)
            server.upstreamWritabilityChanged()
        }
        server.writeFrames([MuxFrame(sessionID: id, status: .end, option: error ? .error : [])])
        server.flushDownstream()
        server.removeIfDone(self)
    }

    var downstreamWritable: Bool { server?.downstreamWritable ?? false }

    func upstreamWritabilityChanged() {
        // Also how a link reports that its connect completed.
        if connecting { server?.connectFinished(self) }
        server?.upstreamWritabilityChanged()
    }
}
