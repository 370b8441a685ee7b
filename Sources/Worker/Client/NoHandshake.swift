import NIOCore

/// dokodemo-door: no handshake at all; the handler relays to its fixed destination from the start.
struct NoHandshake: ClientHandshake {
    let name = "dokodemo-door"
    mutating func step(_ buffer: inout ByteBuffer) -> ClientHandshakeStep { .needMore }
}
