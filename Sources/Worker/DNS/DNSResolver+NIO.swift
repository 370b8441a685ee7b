import NIOCore
import NIOPosix
import Shared

extension DNSResolver {
    /// The built-in DNS as NIO's `Resolver`, for ClientBootstrap's happy-eyeballs connect (freedom's
    /// UseIP* strategies). One per connect, as NIO expects; `family` leaves out A or AAAA.
    final class Adapter: Resolver, @unchecked Sendable {
        private let dns: DNSResolver
        private let family: FamilyResolver.Family
        private let caller: EventLoop

        init(_ dns: DNSResolver, family: FamilyResolver.Family, caller: EventLoop) {
            self.dns = dns
            self.family = family
            self.caller = caller
        }

        func initiateAQuery(host: String, port: Int) -> EventLoopFuture<[NIOCore.SocketAddress]> {
            family == .ipv6 ? caller.makeSucceededFuture([]) : query(host, port, .ipv4)
        }

        func initiateAAAAQuery(host: String, port: Int) -> EventLoopFuture<[NIOCore.SocketAddress]> {
            family == .ipv4 ? caller.makeSucceededFuture([]) : query(host, port, .ipv6)
        }

        /// Nothing to cancel: a question other lookups may share finishes on its own, bounded by its timeout.
        func cancelQueries() {}

        private func query(_ host: String, _ port: Int, _ family: FamilyResolver.Family) -> EventLoopFuture<[NIOCore.SocketAddress]> {
            dns.lookup(host, family: family)
                .map { $0.compactMap { try? NIOCore.SocketAddress(packedIPAddress: ByteBuffer(bytes: $0), port: port) } }
                .recover { _ in [] }
                .hop(to: caller)
        }
    }

    /// The `resolve` of OutboundSelector (routing's IP strategies): every address, failures as none.
    func routingResolve(_ destination: Destination, _ caller: EventLoop) -> EventLoopFuture<[[UInt8]]> {
        guard case .domain(let host) = destination.address else { return caller.makeSucceededFuture([]) }
        return lookup(host, family: .any).recover { _ in [] }.hop(to: caller)
    }
}
