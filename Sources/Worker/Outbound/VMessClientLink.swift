import Foundation
import Logging
import NIOCore
import Shared

/// One VMess request to a server, as the outbound half of a relay: connects (failing over to the next
/// server), sends the request header together with the first payload (0-RTT, §4), then the request
/// body; `VMessClientHandler` reads the response. Never waits for the response before sending.
///
/// Bounded: bytes written before the connection is up are queued up to the level's bufferSize
/// (`isWritable` turns false past that, so the inbound stops reading its client); datagrams beyond 64
/// are dropped.
final class VMessClientLink: UpstreamLink {
    /// Wait this long for the first payload so that header and payload leave in one write, as the
    /// reference client does (proxy.FirstPayloadTimeout).
    static let firstPayloadWait: TimeAmount = .milliseconds(100)
    static let maxPendingDatagrams = 64

    private let outbound: VMessOutbound
    private let destination: Destination
    private let command: RequestCommand
    private weak var sink: DownstreamSink?
    private let loop: EventLoop
    private let level: LevelPolicy
    private let logger: Logger

    private var channel: Channel?
    private var handler: VMessClientHandler?
    private var encoder: BodyEncoder?
    /// The sealed request header until it is sent.
    private var header: [UInt8]?
    private var firstPayloadTimer: Scheduled<Void>?

    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private let pendingLimit: Int
    private var finishRequested = false
    private var finished = false
    private var closed = false
    /// Failover: the servers this connection tries in order (VMessOutbound.serverOrder), and how
    /// many it has tried.
    private var attempts = 0
    private let order: [VMessOutbound.Server]
    /// The connect in flight, closed at once if this link is closed first.
    private var connecting: PendingConnect?

    init(outbound: VMessOutbound, destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy,
         logger: Logger) {
        self.outbound = outbound
        self.destination = destination
        // §10.1: the mux client's destination v1.mux.cool becomes command 3; UDP is command 2.
        if destination.address == .domain(MuxClientPool.muxDomain) {
            command = .mux
        } else {
            command = destination.network == .udp ? .udp : .tcp
        }
        self.sink = sink
        self.loop = loop
        self.level = level
        self.logger = logger
        pendingLimit = max(level.bufferSize, 16) * 1024
        order = outbound.serverOrder()
        connect()
    }

    // MARK: connecting

    private func connect() {
        // The inbound went away without closing us: nothing to connect for.
        guard let sink, !closed else { return close() }
        let server = order[attempts]
        let user = server.nextUser()
        let handler = VMessClientHandler(sink: sink, destination: destination, logger: logger)
        handler.onSwitchAccount = { [weak outbound] command in outbound?.accept(command, from: server, user: user) }
        self.handler = handler
        let watermark = min(max(level.bufferSize, 16), 1024) * 1024
        let connecting = PendingConnect()
        self.connecting = connecting
        outbound.dialer.connect(host: server.address, port: server.port, on: loop, timeout: outbound.dialTimeout(level)) { channel in
            guard connecting.register(channel) else { return channel.eventLoop.makeFailedFuture(PendingConnect.Cancelled()) }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(handler)
                // An HTTP/2 stream (grpc, h2) has the watermarks of its stream configuration and
                // traps on this option.
                if !self.outbound.dialer.usesHTTP2 {
                    _ = channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: watermark / 2, high: watermark))
                }
            }
        }.whenComplete { [weak self] result in
            connecting.finish()
            guard let self else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                self.connected(channel, user: user, handler: handler)
            case .failure(let error):
                self.logger.debug("vmess outbound: connect to \(server.address):\(server.port) failed: \(error)")
                self.attempts += 1
                if !self.closed, self.attempts < self.order.count {
                    self.connect()
                } else if !self.closed {
                    self.closed = true
                    self.sink?.downstreamFinished(error: true)
                }
            }
        }
    }

    private func connected(_ channel: Channel, user: VMessClientUser, handler: VMessClientHandler) {
        guard !closed else { channel.close(promise: nil); return }
        let request: VMessClientRequest
        do {
            request = try user.makeRequest(command: command, destination: destination, now: Int64(Date().timeIntervalSince1970))
            encoder = try BodyEncoder(.request(request.header))
            try handler.expect(request)
        } catch {
            logger.error("vmess outbound: cannot build the request: \(error)")
            channel.close(promise: nil)
            closed = true
            sink?.downstreamFinished(error: true)
            return
        }
        self.channel = channel
        header = request.wire
        if !pending.isEmpty || finishRequested {
            let queued = pending
            pending.removeAll()
            pendingBytes = 0
            sendHeader(with: queued)
            if finishRequested { finishUpstream() }
            channel.flush()
        } else {
            firstPayloadTimer = loop.scheduleTask(in: Self.firstPayloadWait) { [weak self] in
                guard let self, let channel = self.channel else { return }
                self.sendHeader(with: [])
                channel.flush()
            }
        }
        sink?.upstreamWritabilityChanged()
    }

    /// Writes the header and `payloads` as one buffer (one segment, one WebSocket message).
    private func sendHeader(with payloads: [ByteBuffer]) {
        guard let header, let channel, let encoder else { return }
        self.header = nil
        firstPayloadTimer?.cancel()
        firstPayloadTimer = nil
        var out = channel.allocator.buffer(capacity: header.count + payloads.reduce(0) { $0 + $1.readableBytes } + 256)
        out.writeBytes(header)
        for var payload in payloads {
            encode(&payload, encoder: encoder, into: &out, allocator: channel.allocator)
        }
        channel.write(out, promise: nil)
    }

    private func encode(_ payload: inout ByteBuffer, encoder: BodyEncoder, into out: inout ByteBuffer,
                        allocator: ByteBufferAllocator) {
        do {
            if command == .udp {
                // One datagram per chunk; one that does not fit a chunk is dropped, like the reference.
                _ = try payload.withUnsafeReadableBytes { try encoder.encodeDatagram($0, into: &out) }
            } else {
                var encoded = try encoder.encode(&payload, allocator: allocator)
                out.writeBuffer(&encoded)
            }
        } catch {
            logger.error("vmess outbound: request body: \(error)")
            close()
            sink?.downstreamFinished(error: true)
        }
    }

    // MARK: UpstreamLink

    func write(_ buffer: ByteBuffer) {
        guard !closed, !finished else { return }
        guard let channel, let encoder else {
            pending.append(buffer)
            pendingBytes += buffer.readableBytes
            return
        }
        if header != nil {
            sendHeader(with: [buffer])
        } else {
            var payload = buffer
            if command == .udp {
                var out = channel.allocator.buffer(capacity: payload.readableBytes + 100)
                encode(&payload, encoder: encoder, into: &out, allocator: channel.allocator)
                if out.readableBytes > 0 { channel.write(out, promise: nil) }
            } else {
                do {
                    channel.write(try encoder.encode(&payload, allocator: channel.allocator), promise: nil)
                } catch {
                    logger.error("vmess outbound: request body: \(error)")
                    close()
                    sink?.downstreamFinished(error: true)
                }
            }
        }
    }

    /// Command 2 carries one destination per connection (§9.12): `destination` is that one.
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !closed, !finished else { return }
        if channel == nil {
            guard pending.count < Self.maxPendingDatagrams else { return }
            pending.append(buffer)
            return
        }
        // UDP is lossy by contract: drop rather than queue when the server side is congested.
        if let channel, header == nil, !channel.isWritable { return }
        write(buffer)
    }

    func flush() {
        guard header == nil else { return }  // still coalescing: the timer or the first write flushes
        channel?.flush()
    }

    /// The local client sends nothing more: the end-of-stream chunk (§9.11). Raw bodies (zero) have
    /// none, so there the TCP write side is shut instead, which is the only end signal they have (only
    /// on plain TCP: a wrapping transport may not survive a half-close).
    func finishUpstream() {
        guard !closed, !finished else { return }
        guard let channel, let encoder else {
            finishRequested = true
            return
        }
        finished = true
        if header != nil { sendHeader(with: []) }
        var end = channel.allocator.buffer(capacity: 64)
        do {
            try encoder.encodeEnd(into: &end)
        } catch {
            logger.debug("vmess outbound: end of request: \(error)")
        }
        if end.readableBytes > 0 {
            channel.writeAndFlush(end, promise: nil)
        } else {
            channel.flush()
            if outbound.stream.network == .tcp, outbound.stream.security == .none, command != .udp {
                channel.close(mode: .output, promise: nil)
            }
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        connecting?.cancel()
        connecting = nil
        firstPayloadTimer?.cancel()
        firstPayloadTimer = nil
        handler?.sink = nil
        channel?.close(promise: nil)
        channel = nil
        pending.removeAll()
        pendingBytes = 0
    }

    var isWritable: Bool {
        if let channel { return channel.isWritable }
        return pendingBytes < pendingLimit
    }

    var isConnecting: Bool { channel == nil && !closed }

    func downstreamWritabilityChanged() { handler?.resumeReads() }

    /// The request and response ciphers' contexts.
    func releaseIdleMemory() {
        encoder?.releaseCipherContexts()
        handler?.releaseCipherContexts()
    }
}
