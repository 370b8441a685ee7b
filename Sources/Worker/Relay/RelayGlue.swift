import NIOCore

/// The client-facing half of a relay, shared by the VMess server inbound and the local client
/// inbounds (socks, http, dokodemo-door): read-on-writability backpressure in both directions and the
/// half-close bookkeeping (after apple/swift-nio-examples' GlueHandler, adapted to an outbound link
/// instead of a second channel).
///
/// - Reads from the client are held while the outbound link cannot take more, and resumed when it
///   says it can (`upstreamWritabilityChanged`).
/// - When the client becomes writable again, the link is told so it resumes reading its target.
/// - Each direction finishes once; the handler learns whether the other one has finished too (then
///   it closes) or not (then V2Ray's uplinkOnly/downlinkOnly timer runs).
///
/// Event-loop confined, owned by its handler; holds no buffers.
final class RelayGlue {
    /// The outbound half while relaying; nil before and after.
    var link: UpstreamLink?
    private var heldRead = false
    private(set) var uplinkDone = false
    private(set) var downlinkDone = false

    enum Finish {
        /// That direction had already finished.
        case already
        /// Both directions are done: close the client connection.
        case both
        /// The other direction is still open: start its timer.
        case other
    }

    /// The user's uplink rate holds the client's reads for now (VMessServerHandler's limits).
    var holdForRate = false

    private var shouldHoldReads: Bool { holdForRate || (link.map { !$0.isWritable } ?? false) }

    /// The handler's `read(context:)`.
    func read(context: ChannelHandlerContext) {
        if shouldHoldReads {
            heldRead = true
        } else {
            context.read()
        }
    }

    /// The link can take more again: resume a held read.
    func upstreamWritabilityChanged(context: ChannelHandlerContext?) {
        guard heldRead, !shouldHoldReads, let context else { return }
        heldRead = false
        context.read()
    }

    /// The handler's `channelWritabilityChanged(context:)`.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link?.downstreamWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    /// The client sent everything: half-close toward the target.
    func finishUplink() -> Finish {
        guard !uplinkDone else { return .already }
        uplinkDone = true
        link?.finishUpstream()
        link?.flush()
        return downlinkDone ? .both : .other
    }

    /// The target sent everything (the handler writes its own end marker first).
    func finishDownlink() -> Finish {
        guard !downlinkDone else { return .already }
        downlinkDone = true
        return uplinkDone ? .both : .other
    }

    /// Closes the link (teardown).
    func close() {
        link?.close()
        link = nil
    }
}
