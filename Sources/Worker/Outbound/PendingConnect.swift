import NIOCore

/// The sockets of a connect still in flight (Happy Eyeballs may have several at once), so that a link
/// closed before its connect completes closes them at once. Without it, a closed link's socket stays
/// open and keeps retrying its SYN until the connect timeout: a client that opens and abandons
/// requests toward an address that never answers would hold one descriptor per request (and make the
/// server a SYN flooder). Event-loop confined.
final class PendingConnect {
    struct Cancelled: Error {}

    private var channels: [Channel] = []
    private(set) var cancelled = false

    /// From the channel initializer: remembers the attempt's channel, or refuses it (the caller fails
    /// the initializer) when the link is already closed.
    func register(_ channel: Channel) -> Bool {
        guard !cancelled else { return false }
        channels.append(channel)
        return true
    }

    /// The connect finished (either way): nothing left to cancel.
    func finish() { channels.removeAll() }

    /// Closes every attempt in flight; later attempts are refused by `register`.
    func cancel() {
        guard !cancelled else { return }
        cancelled = true
        let inFlight = channels
        channels.removeAll()
        for c in inFlight { c.close(promise: nil) }
    }
}
