import NIOCore

/// The client-facing half of a relay, shared by the VMess server inbound and the local client
/// inbounds (socks, http, dokodemo-door): read-on-writability backpressure in both directions and the
/// half-close bookkeeping (after apple/swift-nio-examples' GlueHandler, adapted to an outbound link
/// instead of a second channel).
///
/// - Reads from the client are held while the outbound link cannot take more, and resumed when it
///   says it can (`upstreamWritabilityChanged`). What NIO reads unasked at the client's EOF waits
///   the same way (ReadHold), and the end of input behind it: the handler's `channelRead` asks
///   `admit`, its end of input `admitEnd`.
/// - When the client becomes writable again, the link is told so it resumes reading its target.
/// - Each direction finishes once; the handler learns whether the other one has finished too (then
///   it closes) or not (then V2Ray's uplinkOnly/downlinkOnly timer runs).
///
/// Event-loop confined, owned by its handler; holds no buffers but what ReadHold keeps after an EOF.
final class RelayGlue {
    /// The outbound half while relaying; nil before and after.
    var link: UpstreamLink?
    private let hold = ReadHold()
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
        hold.read(context: context, open: !shouldHoldReads)
    }

    /// The handler's `channelRead` while relaying (`.refused`: the handler closes the connection).
    func admit(_ buffer: ByteBuffer) -> ReadHold.Admission { hold.admit(buffer, open: !shouldHoldReads) }

    /// The client's input ended while relaying: true to finish the uplink now, false when the end
    /// waits behind kept bytes (`upstreamWritabilityChanged` then hands it to `end`).
    func admitEnd() -> Bool { hold.admitEnd() }

    /// The link can take more again (or a rate hold ended): kept bytes go to `deliver` while it
    /// can, then a kept end to `end`, then a held read is resumed.
    func upstreamWritabilityChanged(context: ChannelHandlerContext?, deliver: (inout ByteBuffer) -> Void,
                                    end: () -> Void) {
        let delivered = hold.resume(context: context, open: { !shouldHoldReads }, deliver: deliver, end: end)
        if delivered { link?.flush() }
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
        hold.discard()
        link?.close()
        link = nil
    }
}
