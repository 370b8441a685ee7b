import Logging
import NIOCore
import Shared

/// One Mux.Cool connection: a VMess connection with command 3 whose body is a stream of mux frames
/// (§10.2), demultiplexed here into sessions. It is the sink of its VMess link.
///
/// Backpressure: frames are read from the server only while every session's local client can take
/// more (what the reference does too: one slow reader stalls the connection, it never grows a queue).
/// Faults: a frame for a session that is gone gets an End back; a malformed frame stream ends the
/// whole connection (every session sees an error), as in v2fly.
final class MuxClientConnection: DownstreamSink {
    unowned let pool: MuxClientPool
    let loop: EventLoop
    private let logger: Logger
    private var link: UpstreamLink?
    private var sessions: [UInt16: MuxClientSession] = [:]
    private var nextID: UInt16 = 1
    /// Bytes of a frame that is not complete yet (< 2 + 512 + 2 + 65535).
    private var partial: ByteBuffer?
    /// Sessions that got data in the current read, to flush their clients once per read.
    private var touched: [MuxClientSession] = []
    private var idleTimer: Scheduled<Void>?
    private(set) var closed = false

    init(pool: MuxClientPool, loop: EventLoop, logger: Logger) {
        self.pool = pool
        self.loop = loop
        self.logger = logger
    }

    func start(outbound: VMessOutbound, level: LevelPolicy) {
        let target = Destination(network: .tcp, address: .domain(MuxClientPool.muxDomain), port: MuxClientPool.muxPort)
        attach(outbound.openConnection(target, sink: self, loop: loop, level: level))
    }

    /// The VMess link (command 3) this connection's frames travel on; also the seam for tests.
    func attach(_ link: UpstreamLink) {
        self.link = link
        if closed { link.close() }  // the link failed while being opened
    }

    private var opened: Int { Int(nextID) - 1 }

    var canAccept: Bool {
        !closed && sessions.count < pool.concurrency && opened < MuxClientPool.maxSessionsPerConnection
    }

    func openSession(_ destination: Destination, sink: DownstreamSink) -> MuxClientSession {
        let session = MuxClientSession(id: nextID, destination: destination, sink: sink, connection: self)
        nextID &+= 1
        sessions[session.id] = session
        idleTimer?.cancel()
        idleTimer = nil
        if closed {
            loop.execute { session.remoteEnd(error: true) }
        } else {
            session.start()
        }
        return session
    }

    // MARK: from the sessions

    func send(_ frames: ByteBuffer) {
        guard !closed else { return }
        link?.write(frames)
    }

    func flush() { link?.flush() }

    var isWritable: Bool { !closed && (link?.isWritable ?? false) }

    func sessionEnded(_ session: MuxClientSession) {
        guard sessions[session.id] === session else { return }
        sessions[session.id] = nil
        guard sessions.isEmpty, !closed else { return }
        if opened >= MuxClientPool.maxSessionsPerConnection {
            shutdown()
        } else {
            idleTimer = loop.scheduleTask(in: MuxClientPool.idleTimeout) { [weak self] in
                guard let self, self.sessions.isEmpty else { return }
                self.shutdown()
            }
        }
    }

    /// A session's client can take more: resume reading once all of them can.
    func sessionBecameWritable() {
        if downstreamWritable { link?.downstreamWritabilityChanged() }
    }

    /// Ends the connection and every session on it.
    private func shutdown(error: Bool = false) {
        guard !closed else { return }
        closed = true
        idleTimer?.cancel()
        idleTimer = nil
        link?.close()
        link = nil
        partial = nil
        let all = sessions.values
        sessions.removeAll()
        for s in all { s.remoteEnd(error: true) }
        pool.remove(self)
        if error { logger.debug("mux connection aborted", metadata: ["sessions": "\(all.count)"]) }
    }

    // MARK: DownstreamSink (the server's frames)

    func downstream(_ buffer: inout ByteBuffer) {
        guard !closed else { return }
        var input: ByteBuffer
        if var p = partial {
            partial = nil
            p.writeBuffer(&buffer)
            input = p
        } else {
            input = buffer
            buffer.moveReaderIndex(to: buffer.writerIndex)
        }
        while input.readableBytes > 0 {
            let frame: MuxFrame
            do {
                guard let f = try MuxFrame.parse(&input) else { break }
                frame = f
            } catch {
                logger.debug("mux: bad frame from the server: \(error)")
                return shutdown(error: true)
            }
            handle(frame)
            if closed { return }
        }
        if input.readableBytes > 0 { partial = input }
    }

    private func handle(_ frame: MuxFrame) {
        switch frame.status {
        case .keep:
            guard let session = sessions[frame.sessionID] else {
                // §10.3: data for a session we no longer know: tell the server to end it.
                var out = ByteBufferAllocator().buffer(capacity: 8)
                MuxFrame(sessionID: frame.sessionID, status: .end).write(into: &out)
                send(out)
                return
            }
            if let data = frame.data, data.readableBytes > 0 {
                session.deliver(data)
                if !touched.contains(where: { $0 === session }) { touched.append(session) }
            }
        case .end:
            sessions[frame.sessionID]?.remoteEnd(error: frame.option.contains(.error))
        case .new, .keepAlive:
            // A server never opens sessions; KeepAlive carries nothing. Both are discarded (v2fly).
            break
        }
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}

    func flushDownstream() {
        let list = touched
        touched.removeAll(keepingCapacity: true)
        for s in list { s.flushClient() }
        flush()  // End frames written while handling this read
    }

    /// The VMess connection ended: so does every session on it.
    func downstreamFinished(error: Bool) {
        shutdown(error: error)
    }

    var downstreamWritable: Bool {
        sessions.values.allSatisfy { $0.clientWritable }
    }

    func upstreamWritabilityChanged() {
        for s in sessions.values { s.connectionWritabilityChanged() }
    }
}
