import NIOCore

/// What a local proxy protocol (SOCKS, HTTP) decides from the bytes its client sent. The parsers
/// are pure state machines that return these; `ClientInboundHandler` carries them out.
enum ClientHandshakeStep {
    /// Not enough bytes yet; everything unconsumed stays in the buffer.
    case needMore
    /// Send this to the client and keep reading (e.g. the SOCKS method choice).
    case reply([UInt8])
    /// Relay to a destination.
    case connect(ClientRequest)
    /// SOCKS UDP ASSOCIATE: bind a relay socket and answer with its address. `client` is the
    /// address the client said it would send from (often all zero).
    case associateUDP(client: Destination)
    /// Send this (possibly nothing) and close.
    case refuse([UInt8])
}

/// A request to relay, as a proxy protocol parsed it.
struct ClientRequest {
    var destination: Destination
    /// Sent to the client when the relay starts (SOCKS success, "200 Connection established").
    var reply: [UInt8] = []
    /// Bytes for the target that came with the request (the rewritten HTTP request head).
    var payload: ByteBuffer?
    /// Sent instead of a close when the outbound fails before the target said anything (HTTP 502).
    var failureReply: [UInt8]?
}

/// A local proxy protocol's request parser.
protocol ClientHandshake {
    /// Consumes what it can from `buffer` and says what to do next. Called again with the rest of
    /// the buffer after `.reply`; never crashes on hostile input, never buffers without bound (the
    /// handler also caps what it accumulates for a handshake).
    mutating func step(_ buffer: inout ByteBuffer) -> ClientHandshakeStep
    /// What the protocol calls itself in logs and the access log.
    var name: String { get }
}
