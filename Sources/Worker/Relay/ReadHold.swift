import NIOConcurrencyHelpers
import NIOCore
import Shared

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
/// - What all connections of a worker keep together is bounded (`KeptBytesBudget`): the kernel
///   bounds socket memory machine-wide, but bytes moved into the worker would not be, and a client
///   that stops reading while its targets send and close could pile up a receive buffer per
///   connection. A read that does not fit is refused: the handler fails that connection.
///
/// A class, not a struct: `resume` hands bytes on through the handler, whose writes can flip the
/// client's writability and so call `resume` again; the outer call finishes the work.
/// Event-loop confined (the budget it draws on is shared and locked).
final class ReadHold {
    private var held = false
    /// What arrived while the other side was held (nil: nothing; no storage for most connections).
    private var kept: CircularBuffer<ByteBuffer>?
    private var endKept = false
    private var resuming = false
    private let budget: KeptBytesBudget
    /// Bytes kept now (drawn from `budget`).
    private(set) var keptBytes = 0

    init(budget: KeptBytesBudget = .worker) { self.budget = budget }

    deinit { budget.give(keptBytes) }

    enum Admission {
        /// Hand the buffer on now.
        case pass
        /// Kept: the other side is held, or older bytes wait.
        case kept
        /// The worker's budget for kept bytes cannot take it: fail the connection.
        case refused
    }

    /// The handler's `read(context:)`.
    func read(context: ChannelHandlerContext, open: Bool) {
        if open && kept == nil { context.read() } else { held = true }
    }

    /// The handler's `channelRead`.
    func admit(_ buffer: ByteBuffer, open: Bool) -> Admission {
        if open && kept == nil && !endKept { return .pass }
        guard budget.take(buffer.readableBytes) else { return .refused }
        keptBytes += buffer.readableBytes
        if kept == nil { kept = CircularBuffer(initialCapacity: 4) }
        kept!.append(buffer)
        return .kept
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
            keptBytes -= buffer.readableBytes
            budget.give(buffer.readableBytes)
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
        budget.give(keptBytes)
        keptBytes = 0
        kept = nil
        endKept = false
    }
}

/// The bytes every ReadHold of a worker may keep together: `"vmessd": {"limits":
/// {"waitingBytesPerWorker": N}}`, by default 256 MiB (ClientLimits says why), set once at the
/// worker's start.
final class KeptBytesBudget: Sendable {
    static let worker = KeptBytesBudget(limit: ClientLimits.defaultWaitingBytesPerWorker)

    private let state: NIOLockedValueBox<(limit: Int, used: Int, refusals: Int)>

    init(limit: Int) { state = NIOLockedValueBox((limit: limit, used: 0, refusals: 0)) }

    var limit: Int {
        get { state.withLockedValue { $0.limit } }
        set { state.withLockedValue { $0.limit = newValue } }
    }
    var inUse: Int { state.withLockedValue { $0.used } }
    /// Reads refused so far (published as `dropped_kept_over_budget`).
    var refusals: Int { state.withLockedValue { $0.refusals } }

    /// Takes `count` bytes if they fit.
    func take(_ count: Int) -> Bool {
        state.withLockedValue { state in
            guard count <= state.limit - state.used else {
                state.refusals += 1
                return false
            }
            state.used += count
            return true
        }
    }

    func give(_ count: Int) {
        guard count > 0 else { return }
        state.withLockedValue { $0.used -= count }
    }
}
