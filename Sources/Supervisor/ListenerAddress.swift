// What a listening socket of the supervisor is bound to. One kind per socket family the supervisor
// creates (a UDP kind joins here when UDP inbounds do).

import Shared

enum ListenerAddress: Equatable, CustomStringConvertible {
    /// A TCP socket (one per worker, SO_REUSEPORT), with the port the kernel bound.
    case tcp(SocketAddress)
    /// A Unix stream socket (one, shared by every worker).
    case unix(UnixListenAddress)

    /// The TCP port; 0 for a Unix socket (which has none).
    var port: Int {
        if case .tcp(let address) = self { return address.port }
        return 0
    }

    var description: String {
        switch self {
        case .tcp(let address): "\(address)"
        case .unix(let address): "unix:\(address)"
        }
    }
}
