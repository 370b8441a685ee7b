import NIOCore
import Shared

/// One request carried as a Mux.Cool session (§10.3): New (with the first data, or alone after
/// 100 ms), Keep frames of at most 8192 bytes (UDP: exactly one datagram of at most 2048 bytes), End
/// when the local client is done. The outbound half of a relay, like a VMess link of its own.
final class MuxClientSession: UpstreamLink {
    let id: UInt16
    let destination: Destination
    private weak var sink: DownstreamSink?
    private let connection: MuxClientConnection
    private var newSent = false
    private var newTimer: Scheduled<Void>?
    private var localEnded = false
    private var remoteEnded = false
    private var closed = false

    init(id: UInt16, destination: Destination, sink: DownstreamSink, connection: MuxClientConnection) {
        self.id = id
        self.destination = destination
        self.sink = sink
        self.connection = connection
    }

    private var network: MuxFrame.Network { destination.network == .udp ? .udp : .tcp }

    func start() {
        newTimer = connection.loop.scheduleTask(in: VMessClientLink.firstPayloadWait) { [weak self] in
            guard let self, !self.newSent, !self.closed else { return }
            var out = ByteBufferAllocator().buffer(capacity: 32)
            self.appendNew(data: nil, into: &out)
            self.connection.send(out)
            self.connection.flush()
        }
    }

    private func appendNew(data: ByteBuffer?, into out: inout ByteBuffer) {
        newSent = true
        newTimer?.cancel()
        newTimer = nil
        MuxFrame(sessionID: id, status: .new, network: network, port: destination.port, address: destination.address,
                 data: data).write(into: &out)
    }

    private func appendData(_ data: ByteBuffer, into out: inout ByteBuffer) {
        if newSent {
            MuxFrame(sessionID: id, status: .keep, data: data).write(into: &out)
        } else {
            appendNew(data: data, into: &out)
        }
    }

    // MARK: UpstreamLink

    func write(_ buffer: ByteBuffer) {
        guard !localEnded, !closed, buffer.readableBytes > 0 else { return }
        var rest = buffer
        let slice = MuxFrame.maxStreamSlice
        var out = ByteBufferAllocator().buffer(capacity: rest.readableBytes + (rest.readableBytes / slice + 1) * 48)
        while rest.readableBytes > 0 {
            appendData(rest.readSlice(length: min(slice, rest.readableBytes))!, into: &out)
        }
        connection.send(out)
    }

    /// One datagram per frame; larger than a mux UDP frame may be is dropped (§10.3), and so is one
    /// that arrives while the connection is congested (UDP is lossy by contract).
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !localEnded, !closed, buffer.readableBytes <= MuxFrame.maxUDPData else { return }
        guard connection.isWritable || !newSent else { return }
        var out = ByteBufferAllocator().buffer(capacity: buffer.readableBytes + 48)
        appendData(buffer, into: &out)
        connection.send(out)
    }

    func flush() {
        if newSent { connection.flush() }
    }

    func finishUpstream() {
        guard !localEnded, !closed else { return }
        localEnded = true
        var out = ByteBufferAllocator().buffer(capacity: 48)
        if !newSent { appendNew(data: nil, into: &out) }
        MuxFrame(sessionID: id, status: .end).write(into: &out)
        connection.send(out)
        connection.flush()
        if remoteEnded { connection.sessionEnded(self) }
    }

    /// The inbound is done with this request. An End that was not sent yet goes out with the Error
    /// bit: the server aborts its side instead of waiting for more.
    func close() {
        guard !closed else { return }
        closed = true
        newTimer?.cancel()
        newTimer = nil
        if !localEnded && newSent {
            var out = ByteBufferAllocator().buffer(capacity: 8)
            MuxFrame(sessionID: id, status: .end, option: remoteEnded ? [] : .error).write(into: &out)
            connection.send(out)
            connection.flush()
        }
        localEnded = true
        sink = nil
        connection.sessionEnded(self)
    }

    var isWritable: Bool { connection.isWritable }

    func downstreamWritabilityChanged() { connection.sessionBecameWritable() }

    // MARK: from the connection

    var clientWritable: Bool { sink?.downstreamWritable ?? true }

    func deliver(_ data: ByteBuffer) {
        guard !remoteEnded, let sink else { return }
        if destination.network == .udp {
            // Whatever size the server sent (a frame bounds it to 65,535): carried whole.
            sink.downstreamDatagram(data, source: destination)
        } else {
            var d = data
            sink.downstream(&d)
        }
    }

    func flushClient() { sink?.flushDownstream() }

    func remoteEnd(error: Bool) {
        guard !remoteEnded else { return }
        remoteEnded = true
        sink?.downstreamFinished(error: error)
        if localEnded { connection.sessionEnded(self) }
    }

    func connectionWritabilityChanged() { sink?.upstreamWritabilityChanged() }
}
