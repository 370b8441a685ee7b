import NIOCore
@testable import Worker

/// A client-handshake run reduced to comparable values: every reply, the final step and the bytes
/// left for the relay. The SOCKS and HTTP proxy targets compare the run over one read with the run
/// over the fuzzed reads: an incremental parser must not depend on where the reads were cut.
public struct HandshakeReplay: Equatable {
    public var replies: [[UInt8]] = []
    public var final: String?
    public var rest: [UInt8] = []
    public init() {}

    /// The step as text, with payload bytes rather than a ByteBuffer's description (which shows
    /// its storage address and would differ between two equal runs).
    static func describe(_ step: ClientHandshakeStep) -> String {
        switch step {
        case .needMore: return "needMore"
        case .reply(let r): return "reply \(r)"
        case .refuse(let r): return "refuse \(r)"
        case .associateUDP(let client): return "associateUDP \(client)"
        case .connect(let request):
            let payload = request.payload.map { Array($0.readableBytesView) }
            return "connect \(request.destination) reply \(request.reply) payload \(String(describing: payload)) "
                + "failure \(String(describing: request.failureReply))"
        }
    }

    /// Runs `machine` over `pieces` as ClientInboundHandler does: after a reply it steps again while
    /// bytes are left; any other decision ends the handshake.
    /// (Internal: ClientHandshake is internal to Worker; the targets import this module @testable.)
    static func run(_ start: some ClientHandshake, _ pieces: [ArraySlice<UInt8>]) -> HandshakeReplay {
        var machine = start
        var buffer = ByteBuffer()
        var replay = HandshakeReplay()
        for (index, piece) in pieces.enumerated() {
            buffer.writeBytes(piece)
            while true {
                let step = machine.step(&buffer)
                if case .needMore = step { break }
                if case .reply(let r) = step {
                    replay.replies.append(r)
                    if buffer.readableBytes > 0 { continue }
                    break
                }
                replay.final = describe(step)
                replay.rest = Array(buffer.readableBytesView) + pieces[(index + 1)...].joined()
                return replay
            }
        }
        replay.rest = Array(buffer.readableBytesView)
        return replay
    }
}
