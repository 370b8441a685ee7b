import NIOCore

/// Read-on-writability backpressure for one channel, including what NIO reads without being asked.
///
/// - A `read` is passed on only while the other side can take more (`open`), else it is held
///   until `resume` finds the other side open again. `resume` checks rather than trusting its
///   caller: "writable again" comes from more than one place (the client socket draining, a user's
///   rate hold ending, a Mux session's client), and one of them saying so does not mean the others
///   agree.
/// - Once the peer's FIN arrives, NIO reads the socket to its end in one go, asked or not
///   (`readEOF`, so that an EOF is never missed), and only then reports the end. That is at most
///   the socket's receive buffer (several MiB on a fast path), which the kernel held anyway. What
///   arrives while the other side is held is kept here, in order, and so is the end of input
///   behind it: `resume` hands them on as the other side opens, so a hold covers a connection's
///   tail too. Without this, a user's downlink rate let the last receive buffer of every download
///   through at once (4 MiB at 1 MiB/s in 0.7-2.9 s instead of ≥ 3.5).
///
/// A class, not a struct: `resume` hands bytes on through the handler, whose writes can flip the
/// client's writability and so call `resume` again; the outer call finishes the work.
/// Event-loop confined.
final class ReadHold {
    private var held = false
    /// What arrived while the other side was held (nil: nothing; no storage for most connections).
    private var kept: CircularBuffer<ByteBuffer>?
    private var endKept = false
    private var resuming = false

    /// Bytes kept now.
    var keptBytes: Int { kept?.reduce(0) { $0 + $1.readableBytes } ?? 0 }

    /// The handler's `read(context:)`.
    func read(context: ChannelHandlerContext, open: Bool) {
        if open && kept == nil { context.read() } else { held = true }
    }

    /// The handler's `channelRead`: true to hand `buffer` on now, false when it was kept (the other
    /// side is held, or older bytes wait).
    func admit(_ buffer: ByteBuffer, open: Bool) -> Bool {
        if open && kept == nil && !endKept { return true }
        if kept == nil { kept = CircularBuffer(initialCapacity: 4) }
        kept!.append(buffer)
        return false
    }

    /// The input ended (EOF, or the channel closed): true to end now, false when the end waits
    /// behind kept bytes (`resume` ends it).
    func admitEnd() -> Bool {
        guard kept != nil else { return true }
        endKept = true
        return false
    }

    /// The other side may take more again: hands kept bytes to `deliver` while `open()` says so,
    /// then a kept end to `end`, then passes on a held read. Returns whether it delivered anything
    /// (the caller then flushes).
    @discardableResult
    func resume(context: ChannelHandlerContext?, open: () -> Bool, deliver: (inout ByteBuffer) -> Void,
                end: () -> Void) -> Bool {
        guard !resuming else { return false }
        resuming = true
        defer { resuming = false }
        var delivered = false
        while kept != nil, open() {
            var buffer = kept!.removeFirst()
            if kept!.isEmpty { kept = nil }
            delivered = true
            deliver(&buffer)
        }
        guard kept == nil else { return delivered }
        if endKept {
            endKept = false
            end()
            return delivered
        }
        guard held, open(), let context else { return delivered }
        held = false
        context.read()
        return delivered
    }

    /// The connection failed or was closed from this side: nothing kept is handed on.
    func discard() {
        kept = nil
        endKept = false
    }
}
