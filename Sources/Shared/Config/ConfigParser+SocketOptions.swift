// `streamSettings.sockopt` (v4, V2Ray's and Xray's keys) and `socketSettings` (v5), and an
// outbound's `sendThrough`.
//
//   v4: {mark, tcpFastOpen: bool|queue length, tcpFastOpenQueueLength, tcpKeepAliveIdle,
//        tcpKeepAliveInterval, tcpNoDelay, tcpCongestion, tcpUserTimeout, interface, bindToDevice,
//        tproxy: "off", acceptProxyProtocol (inbounds)}
//   v5: {mark, tfo: AsIs|Enable|Disable, tfoQueueLength, tcpKeepAliveIdle, tcpKeepAliveInterval,
//        bindToDevice, tproxy: Off, acceptProxyProtocol (inbounds)}

extension ConfigParser {
    /// Keys of the peers' socket options vmessd does not implement (named as such, never "unknown").
    static let unsupportedSocketKeys: Set<String> = [
        "domainStrategy", "dialerProxy", "v6only", "tcpWindowClamp", "tcpMaxSeg", "tcpMptcp",
        "customSockopt", "happyEyeballs", "addressPortStrategy", "rxBufSize", "txBufSize", "forceBufSize",
        "receiveOriginalDestAddress", "bindAddress", "bindPort",
    ]

    /// An outbound's `sockopt`: `acceptProxyProtocol` has no meaning on a dialed socket.
    static func readSocketOptionsV4(_ node: ConfigNode) throws -> SocketOptions {
        var proxyProtocol = false
        let options = try readSocketOptionsV4(node, acceptProxyProtocol: &proxyProtocol)
        if proxyProtocol { throw node.error("\"acceptProxyProtocol\" applies to inbounds only") }
        return options
    }

    static func readSocketOptionsV4(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> SocketOptions {
        var r = try node.object()
        var options = try readCommonSocketOptions(&r)
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        if let tfo = r.take("tcpFastOpen") {
            // A bool, or (Xray) a number: the server's queue length, any value > 0 meaning on.
            if case .bool(let on) = tfo.value {
                options.tcpFastOpen = on
            } else {
                let queue = try tfo.int(-1...65535)
                options.tcpFastOpen = queue > 0
                if queue > 0 { options.tcpFastOpenQueueLength = queue }
            }
        }
        if let queue = r.take("tcpFastOpenQueueLength") { options.tcpFastOpenQueueLength = try queue.int(1...65535) }
        if let nodelay = r.take("tcpNoDelay") { options.tcpNoDelay = try nodelay.bool() }
        if let congestion = r.take("tcpCongestion") { options.tcpCongestion = try readInterfaceLikeName(congestion) }
        if let timeout = r.take("tcpUserTimeout") { options.tcpUserTimeout = try timeout.int(0...Int(Int32.max)) }
        if let device = r.take("interface") ?? r.take("bindToDevice") { options.interface = try readInterfaceLikeName(device) }
        if let tproxy = r.take("tproxy") {
            let mode = try tproxy.string()
            guard mode.lowercased() == "off" else {
                throw tproxy.error("tproxy \(JSONC.quote(mode)) is not supported by vmessd yet (only \"off\")")
            }
        }
        try r.finish(unsupported: unsupportedSocketKeys)
        return options
    }

    /// An outbound's `socketSettings`: `acceptProxyProtocol` has no meaning on a dialed socket.
    static func readSocketOptionsV5(_ node: ConfigNode) throws -> SocketOptions {
        var proxyProtocol = false
        let options = try readSocketOptionsV5(node, acceptProxyProtocol: &proxyProtocol)
        if proxyProtocol { throw node.error("\"acceptProxyProtocol\" applies to inbounds only") }
        return options
    }

    static func readSocketOptionsV5(_ node: ConfigNode, acceptProxyProtocol: inout Bool) throws -> SocketOptions {
        var r = try node.object(protoNames: true)
        var options = try readCommonSocketOptions(&r)
        try readAcceptProxyProtocol(&r, into: &acceptProxyProtocol)
        if let tfo = r.take("tfo") {
            switch try readV5Enum(tfo, ["AsIs", "Enable", "Disable"], [0, 1, 2]) {
            case 1: options.tcpFastOpen = true
            case 2: options.tcpFastOpen = false
            default: break
            }
        }
        if let queue = r.take("tfoQueueLength") { options.tcpFastOpenQueueLength = try queue.int(0...65535) }
        if let device = r.take("bindToDevice") { options.interface = try readInterfaceLikeName(device) }
        if let tproxy = r.take("tproxy"), try readV5Enum(tproxy, ["Off", "TProxy", "Redirect"], [0, 1, 2]) != 0 {
            throw tproxy.error("tproxy is not supported by vmessd yet (only \"Off\")")
        }
        try r.finish(unsupported: unsupportedSocketKeys)
        return options
    }

    /// The keys both formats spell alike.
    private static func readCommonSocketOptions(_ r: inout ObjectReader) throws -> SocketOptions {
        var options = SocketOptions()
        if let mark = r.take("mark") {
            let value = try mark.int(0...Int(UInt32.max))
            if value != 0 { options.mark = UInt32(value) }  // 0: no mark, as in the peers
        }
        if let idle = r.take("tcpKeepAliveIdle") {
            let seconds = try idle.int(-1...32767)  // the kernel's limit for TCP_KEEPIDLE
            if seconds > 0 { options.tcpKeepAliveIdle = seconds }
        }
        if let interval = r.take("tcpKeepAliveInterval") {
            let seconds = try interval.int(-1...32767)
            if seconds > 0 { options.tcpKeepAliveInterval = seconds }
        }
        return options
    }

    /// An interface or congestion-control name: 1-15 printable ASCII bytes (IFNAMSIZ / TCP_CA_NAME_MAX).
    private static func readInterfaceLikeName(_ node: ConfigNode) throws -> String {
        let name = try node.string()
        guard (1...15).contains(name.utf8.count), name.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw node.mismatch("a name of 1-15 printable characters")
        }
        return name
    }

    /// `sendThrough`: an IP literal (the local address to leave from). Xray's "origin"/"srcip" and
    /// CIDR forms pick an address per connection, which vmessd does not do.
    static func readSendThrough(_ node: ConfigNode) throws -> String? {
        let text = try node.string()
        if text.isEmpty || text == "0.0.0.0" || text == "::" { return nil }
        if let address = canonicalIPAddress(text) { return address }
        if text == "origin" || text == "srcip" || text.contains("/") {
            throw node.error("sendThrough \(JSONC.quote(text)) is not supported by vmessd yet (only an IP address)")
        }
        throw node.mismatch("an IP address literal")
    }
}
