import Logging
import NIOCore
import NIOPosix
import Shared

/// The worker's built-in DNS (the `dns` section): one per worker, confined to its event loop, used
/// by freedom's UseIP* strategies and by routing's IPIfNonMatch/IPOnDemand (as V2Ray's own are).
///
/// A lookup: an IP literal is itself; `hosts` first (DNSHosts); then the servers in the order
/// DNSServerSelection gives, each asked for A and/or AAAA (cache first, identical questions in
/// flight shared), `expectIPs` applied; a timeout, an unreachable server or nothing left after
/// `expectIPs` moves on to the next server, an answer (even "no such name") ends the lookup, as in
/// V2Ray. `localhost` servers and a config without servers use getaddrinfo (FamilyResolver).
///
/// Costs and bounds: at most `maximumInFlight` (256) distinct questions wait on the network at once (each
/// holds one socket); past that a lookup fails at once (`busy`) rather than queue. The cache holds at
/// most `cacheCapacity` answers.
final class DNSResolver {
    static let defaultMaximumInFlight = 256
    static let cacheCapacity = 4096

    let loop: EventLoop
    private let hosts: DNSHosts
    private let selection: DNSServerSelection
    private let queryStrategy: DNSConfig.QueryStrategy
    private let disableCache: Bool
    private var cache = DNSCache(capacity: DNSResolver.cacheCapacity)
    private var inFlight: [DNSCache.Key: EventLoopFuture<DNSResponse>] = [:]
    /// One shared UDP link per (outbound, server) for routed queries (DNSSharedLink).
    private var sharedLinks: [SharedLinkKey: DNSSharedLink] = [:]
    private struct SharedLinkKey: Hashable {
        var outbound: ObjectIdentifier
        var server: Destination
    }
    private let system: FamilyResolver
    let maximumInFlight: Int
    private let counters: WorkerCounters?
    /// How the resolver's own queries leave: V2Ray routes them (a UDP request to the server, inbound tag
    /// `dns.tag`). Given the server's destination, the outbound routing picks; queries go through it
    /// unless it sends them straight to the server anyway (`sendsDirectly`). Unset: always directly.
    var route: ((Destination) -> Outbound)?
    /// How `https://` questions are carried through an outbound routing picked (a ProxyDial with the
    /// worker's policy and counters). Unset: such questions fail (`unreachable`).
    var proxyDial: ((Outbound) throws -> ProxyDial)?
    /// The DNS over HTTPS servers, by server index, each with its HTTP/2 connections (made on first use).
    private var httpsClients: [Int: DNSHTTPSClient] = [:]
    /// Where a server's failures are told (unset: nowhere). A server that stops answering (timeouts,
    /// refused connections, a certificate that does not verify) is a warning once, then debug lines
    /// until it answers again, so a dead server is visible at the default level without a line per
    /// question.
    var logger: Logger?
    private var failing: Set<Int> = []
    private let serverPaths: [String]

    init(_ config: DNSConfig, loop: EventLoop, counters: WorkerCounters? = nil,
         maximumInFlight: Int = DNSResolver.defaultMaximumInFlight) throws {
        self.loop = loop
        self.counters = counters
        self.maximumInFlight = maximumInFlight
        hosts = try DNSHosts(config.hosts)
        selection = try DNSServerSelection(config)
        serverPaths = config.servers.map(\.jsonPath)
        queryStrategy = config.queryStrategy
        disableCache = config.disableCache
        system = FamilyResolver(loop: loop, family: .any)
    }

    var inFlightCount: Int { inFlight.count }

    /// What a lookup found: the addresses, and the RCODE a DNS client should be told (NOERROR with
    /// addresses or without, NXDOMAIN and the like from the server that ended the lookup, SERVFAIL when
    /// every server failed).
    struct Resolution: Equatable {
        var addresses: [[UInt8]]
        var rcode: DNSResponse.RCode
    }

    /// The addresses (4 or 16 bytes) of `host` in the families asked for; empty when there are none.
    /// Completes on `loop`; may be called from any thread.
    func lookup(_ host: String, family: FamilyResolver.Family) -> EventLoopFuture<[[UInt8]]> {
        resolve(host, family: family).map(\.addresses)
    }

    func resolve(_ host: String, family: FamilyResolver.Family) -> EventLoopFuture<Resolution> {
        guard loop.inEventLoop else { return loop.flatSubmit { self.resolve(host, family: family) } }
        // inet_pton reads a C string: "1.2.3.4\0…" must not pass as the literal before the NUL.
        if !host.utf8.contains(0), let literal = try? NIOCore.SocketAddress(ipAddress: host, port: 0),
           let raw = OutboundSelector.rawAddress(literal) {
            return loop.makeSucceededFuture(Resolution(addresses: [raw], rcode: .noError))
        }
        return resolve(name: Array(host.utf8), family: family)
    }

    /// A name as DNS bytes (what a client asked the dns outbound), never read as an IP literal.
    func resolve(name bytes: [UInt8], family: FamilyResolver.Family) -> EventLoopFuture<Resolution> {
        guard loop.inEventLoop else { return loop.flatSubmit { self.resolve(name: bytes, family: family) } }
        guard var name = DNSQuestion.normalise(bytes) else {
            return loop.makeSucceededFuture(Resolution(addresses: [], rcode: .formatError))
        }
        let ipv4 = family != .ipv6 && queryStrategy != .useIPv6
        let ipv6 = family != .ipv4 && queryStrategy != .useIPv4
        switch hosts.lookup(name, ipv4: ipv4, ipv6: ipv6) {
        case .none: break
        case .addresses(let addresses): return loop.makeSucceededFuture(Resolution(addresses: addresses, rcode: .noError))
        case .replaced(let replacement): name = replacement
        }
        guard selection.count > 0 else {
            return systemLookup(name, ipv4: ipv4, ipv6: ipv6).map { Resolution(addresses: $0, rcode: .noError) }
        }
        return ask(name, servers: selection.order(for: name)[...], ipv4: ipv4, ipv6: ipv6, failed: false)
    }

    /// Asks `servers` in turn until one gives an answer that ends the lookup. `failed`: an earlier
    /// server timed out or was unreachable (SERVFAIL if no later one answers).
    private func ask(_ name: [UInt8], servers: ArraySlice<Int>, ipv4: Bool, ipv6: Bool, failed: Bool) -> EventLoopFuture<Resolution> {
        guard let server = servers.first else {
            return loop.makeSucceededFuture(Resolution(addresses: [], rcode: failed ? .serverFailure : .noError))
        }
        let types = selection.types(server, ipv4: ipv4, ipv6: ipv6)
        guard !types.isEmpty else { return ask(name, servers: servers.dropFirst(), ipv4: ipv4, ipv6: ipv6, failed: failed) }
        let outcomes = types.map { type -> EventLoopFuture<Result<DNSResponse, Error>> in
            guard let question = DNSQuestion(name: name, type: type) else {
                return loop.makeSucceededFuture(.failure(DNSLookupError.invalidName))
            }
            return query(question, server: server).map { .success($0) }.recover { .failure($0) }
        }
        return EventLoopFuture.whenAllSucceed(outcomes, on: loop).flatMap { [self] results in
            var addresses: [[UInt8]] = []
            var unanswered = false
            var rcode = DNSResponse.RCode.noError
            var failure: Error?
            for result in results {
                switch result {
                case .success(let response):
                    addresses += response.addresses
                    if rcode == .noError { rcode = response.rcode }
                case .failure(let error):
                    unanswered = true
                    failure = failure ?? error
                }
            }
            noteOutcome(server, failure: failure)
            let accepted = selection.accepted(server, addresses)
            if !accepted.isEmpty { return loop.makeSucceededFuture(Resolution(addresses: accepted, rcode: .noError)) }
            // V2Ray moves on after a timeout or an expectIPs mismatch (which an empty answer is too,
            // for a server with expectIPs); any other answer is the answer.
            if unanswered || selection.hasExpectIPs(server) {
                return ask(name, servers: servers.dropFirst(), ipv4: ipv4, ipv6: ipv6, failed: failed || unanswered)
            }
            return loop.makeSucceededFuture(Resolution(addresses: [], rcode: rcode))
        }
    }

    private func noteOutcome(_ server: Int, failure: Error?) {
        guard let logger else { return }
        let path = serverPaths.indices.contains(server) ? serverPaths[server] : "dns.servers[\(server)]"
        guard let failure else {
            if failing.remove(server) != nil { logger.info("DNS server answers again", metadata: ["server": "\(path)"]) }
            return
        }
        // Not the server's doing: this worker's own bound, or a name no server could be asked.
        if let error = failure as? DNSLookupError, error == .busy || error == .invalidName { return }
        if failing.insert(server).inserted {
            logger.warning("DNS server failed; the next one is asked (more failures of it at debug level until it answers)",
                           metadata: ["server": "\(path)", "error": "\(failure)"])
        } else {
            logger.debug("DNS server failed", metadata: ["server": "\(path)", "error": "\(failure)"])
        }
    }

    /// One question to one server: the cache, else the question already in flight, else the network.
    private func query(_ question: DNSQuestion, server: Int) -> EventLoopFuture<DNSResponse> {
        let key = DNSCache.Key(server: server, question: question)
        if !disableCache, let hit = cache.lookup(key, now: NIODeadline.now().uptimeNanoseconds) {
            return loop.makeSucceededFuture(DNSResponse(id: 0, rcode: hit.rcode, addresses: hit.addresses, ttl: 0))
        }
        if let pending = inFlight[key] { return pending }
        guard inFlight.count < maximumInFlight else {
            counters?.drop(.dnsBusy)
            return loop.makeFailedFuture(DNSLookupError.busy)
        }
        let future: EventLoopFuture<DNSResponse>
        switch selection.address(server) {
        case .system:
            future = systemLookup(question.name, ipv4: question.type == .a, ipv6: question.type == .aaaa)
                .map { DNSResponse(id: 0, rcode: .noError, addresses: $0, ttl: 0) }
        case .udp(let address, let port):
            future = exchange(question, server: address, port: port)
        case .tcp(let address, let port, let routed):
            future = streamExchange(question, server: address, port: port, routed: routed)
        case .https(let host, let port, let path, let routed):
            let client = httpsClients[server] ?? DNSHTTPSClient(host: host, port: port, path: path, routed: routed)
            httpsClients[server] = client
            future = httpsExchange(question, client: client)
        }
        inFlight[key] = future
        future.whenComplete { [self] result in
            inFlight[key] = nil
            if case .success(let response) = result, !disableCache {
                cache.insert(key, addresses: response.addresses, rcode: response.rcode, ttl: response.ttl,
                             now: NIODeadline.now().uptimeNanoseconds)
            }
        }
        return future
    }

    /// UDP, then TCP if the UDP answer was truncated: from sockets of its own when routing sends the
    /// queries straight to the server, else through the outbound routing picked.
    private func exchange(_ question: DNSQuestion, server address: [UInt8], port: UInt16) -> EventLoopFuture<DNSResponse> {
        let destination = Destination(network: .udp, address: address.count == 4 ? .ipv4(address) : .ipv6(address), port: port)
        if let outbound = route?(destination), !Self.sendsDirectly(outbound) {
            var stream = destination
            stream.network = .tcp
            return sharedLink(to: destination, through: outbound).ask(question).flatMap { [loop] reply in
                guard case .response(let response) = reply else {
                    return DNSLinkExchange.ask(question, server: stream, through: outbound, on: loop).flatMapThrowing { try Self.response($0) }
                }
                return loop.makeSucceededFuture(response)
            }
        }
        let server: NIOCore.SocketAddress
        do {
            server = try NIOCore.SocketAddress(packedIPAddress: ByteBuffer(bytes: address), port: Int(port))
        } catch {
            return loop.makeFailedFuture(error)
        }
        return DNSUDPExchange.ask(question, server: server, on: loop).flatMap { [loop] reply in
            guard case .response(let response) = reply else {
                return DNSTCPExchange.ask(question, server: server, on: loop).flatMapThrowing { try Self.response($0) }
            }
            return loop.makeSucceededFuture(response)
        }
    }

    /// The open shared link to `server` through `outbound`, or a new one.
    private func sharedLink(to server: Destination, through outbound: Outbound) -> DNSSharedLink {
        let key = SharedLinkKey(outbound: ObjectIdentifier(outbound), server: server)
        if let link = sharedLinks[key], link.isOpen { return link }
        var created: DNSSharedLink?
        let link = DNSSharedLink(server: server, through: outbound, loop: loop) { [weak self] in
            if let self, self.sharedLinks[key] === created { self.sharedLinks[key] = nil }
        }
        created = link
        sharedLinks[key] = link
        return link
    }

    /// A `tcp://` (routed like the UDP queries) or `tcp+local://` (direct) server: TCP only.
    private func streamExchange(_ question: DNSQuestion, server address: [UInt8], port: UInt16, routed: Bool) -> EventLoopFuture<DNSResponse> {
        let destination = Destination(network: .tcp, address: address.count == 4 ? .ipv4(address) : .ipv6(address), port: port)
        if routed, let outbound = route?(destination), !Self.sendsDirectly(outbound) {
            return DNSLinkExchange.ask(question, server: destination, through: outbound, on: loop).flatMapThrowing { try Self.response($0) }
        }
        do {
            let server = try NIOCore.SocketAddress(packedIPAddress: ByteBuffer(bytes: address), port: Int(port))
            return DNSTCPExchange.ask(question, server: server, on: loop).flatMapThrowing { try Self.response($0) }
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// A DNS over HTTPS question: through the outbound routing picks for `https://` (unless it sends
    /// straight to the server anyway), else directly.
    private func httpsExchange(_ question: DNSQuestion, client: DNSHTTPSClient) -> EventLoopFuture<DNSResponse> {
        var through: Outbound?
        if client.routed, let outbound = route?(client.destination), !Self.sendsDirectly(outbound) { through = outbound }
        return client.ask(question, through: through, on: loop) { [proxyDial] outbound in
            guard let proxyDial else { throw DNSLookupError.unreachable("no way to carry DNS over HTTPS through an outbound") }
            return try proxyDial(outbound)
        }.flatMapThrowing { try Self.response($0) }
    }

    private static func response(_ reply: DNSReply) throws -> DNSResponse {
        guard case .response(let response) = reply else { throw DNSLookupError.malformed }
        return response
    }

    /// Whether an outbound would carry a query to exactly the server it was sent to, as the resolver's
    /// own sockets do: a freedom without `redirect`, or a dns outbound (V2Ray's passes its own DNS
    /// client's queries on untouched; its address override is refused by the config parser).
    static func sendsDirectly(_ outbound: Outbound) -> Bool {
        if let counting = outbound as? CountingOutbound { return sendsDirectly(counting.inner) }
        if let freedom = outbound as? FreedomOutbound {
            return freedom.dialer.settings.redirectHost == nil && freedom.dialer.settings.redirectPort == nil
        }
        return outbound is DNSOutbound
    }

    /// getaddrinfo off the loop (FamilyResolver), as raw addresses.
    private func systemLookup(_ name: [UInt8], ipv4: Bool, ipv6: Bool) -> EventLoopFuture<[[UInt8]]> {
        // getaddrinfo reads a C string: a NUL inside would make it look up a shorter name.
        guard !name.contains(0), let host = String(validating: name, as: UTF8.self) else { return loop.makeSucceededFuture([]) }
        let v4 = ipv4 ? system.initiateAQuery(host: host, port: 0) : loop.makeSucceededFuture([])
        let v6 = ipv6 ? system.initiateAAAAQuery(host: host, port: 0) : loop.makeSucceededFuture([])
        return v4.and(v6).map { a, aaaa in (a + aaaa).compactMap(OutboundSelector.rawAddress) }
    }
}
