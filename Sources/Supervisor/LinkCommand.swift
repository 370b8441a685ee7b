// `vmessd link`: one vmess:// share link per VMess user per inbound, for pasting into a client.

import ArgumentParser
import Shared

struct LinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link",
        abstract: "Print vmess:// share links for the configured users."
    )

    @Option(name: [.short, .customLong("config")], help: "Config file (default: ./config.json, then /etc/vmessd/config.json).")
    var configFile: String?

    @Option(help: "Address clients should dial (default: the inbound's listen address, or 127.0.0.1 for a wildcard).")
    var address: String?

    func run() throws {
        guard case .file(let path) = ConfigLocator().locate(explicit: configFile) else {
            printError("no config file: give -c FILE (looked at \(ConfigLocator.defaultPaths.joined(separator: ", ")))")
            throw ExitStatus.configError
        }
        let config = try loadConfig(at: path)
        let links = shareLinks(for: config, address: address)
        if links.isEmpty { printError("\(path): no VMess users configured") }
        for link in links { printNow(link) }
    }
}

/// Links for every VMess user of every inbound, in config order.
func shareLinks(for config: Config, address: String?) -> [String] {
    var links: [String] = []
    for inbound in config.inbounds {
        // A Unix socket is reached through a front end (nginx, HAProxy) whose address vmessd does not know.
        guard case .vmess(let settings) = inbound.settings, inbound.unixSocket == nil else { continue }
        let stream = inbound.stream
        // ws and httpupgrade carry a path and a Host header the client must send.
        var host = "", path = "", type = "none"
        switch stream.network {
        case .tcp:
            // The HTTP disguise: the client needs a path the server accepts; Host is free, the server's own list is a fine choice.
            if let header = stream.tcpHeader {
                type = "http"
                path = header.request.paths.joined(separator: ",")
                host = header.request.headers.first { $0.name.lowercased() == "host" }?.values.joined(separator: ",") ?? ""
            }
        case .ws:
            path = stream.ws?.path ?? "/"
            host = stream.ws?.host ?? stream.ws?.headers["Host"] ?? ""
        case .httpupgrade:
            path = stream.httpUpgrade?.path ?? "/"
            host = stream.httpUpgrade?.host ?? stream.httpUpgrade?.headers["Host"] ?? ""
        case .grpc:
            // v2rayN's convention: the service name in `path`, the mode in `type`.
            path = stream.grpc?.serviceName ?? ""
            type = stream.grpc?.multiMode == true ? "multi" : "gun"
        case .h2:
            path = stream.http?.path ?? "/"
            host = stream.http?.hosts.joined(separator: ",") ?? ""
        case .kcp:
            // v2rayN's convention: the packet header in `type`, the seed in `path`.
            type = stream.kcp?.header.rawValue ?? "none"
            path = stream.kcp?.seed ?? ""
        }
        for user in settings.users {
            let link = ShareLink(
                remark: ShareLink.remark(tag: inbound.tag, email: user.email),
                address: ShareLink.dialAddress(listen: inbound.listen, override: address),
                port: inbound.port,
                id: user.id,
                network: stream.network.rawValue,
                type: type,
                host: host,
                path: path,
                tls: stream.security == .tls,
                sni: stream.tls?.serverName ?? ""
            )
            links.append(link.url)
        }
    }
    return links
}
