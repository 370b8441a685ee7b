// `vmess://` share links in the v2rayN format that V2Ray clients import: "vmess://" followed by the
// standard base64 of a JSON object whose values are all strings. Deliberately independent of the config
// model (no `import Shared`): the caller picks the values, this file only knows the format.

import Foundation

struct ShareLink: Codable, Equatable {
    /// Field names are the format's; every value is a string, including port and aid.
    var v = "2"
    /// Remark shown in the client's server list.
    var ps: String
    /// Address the client dials.
    var add: String
    var port: String
    /// User UUID.
    var id: String
    /// alterId: always 0 (AEAD headers; vmessd does not serve the legacy MD5 header).
    var aid = "0"
    /// Body security the client should pick; "auto" lets it choose by its CPU.
    var scy = "auto"
    /// "tcp", "ws" or "httpupgrade".
    var net: String
    /// Header obfuscation type: "none", or "http" for tcp's HTTP disguise.
    var type: String
    /// Host header (ws/httpupgrade; tcp with "http": the Host values, comma-separated).
    var host: String
    /// Request path (ws/httpupgrade; tcp with "http": the paths, comma-separated).
    var path: String
    /// "" or "tls".
    var tls: String
    /// TLS server name.
    var sni: String

    init(remark: String, address: String, port: Int, id: String, network: String = "tcp",
         type: String = "none", host: String = "", path: String = "", tls: Bool = false, sni: String = "") {
        self.ps = remark
        self.add = address
        self.port = String(port)
        self.id = id
        self.net = network
        self.type = type
        self.host = host
        self.path = path
        self.tls = tls ? "tls" : ""
        self.sni = sni
    }

    /// The link text. Keys are sorted so the same inputs always give the same link.
    var url: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings cannot fail.
        let json = try! encoder.encode(self)
        return "vmess://" + json.base64EncodedString()
    }

    /// Reads a link back (tests, and a future `vmessd link --check`). Accepts unpadded base64 too,
    /// as some clients emit it.
    init?(url: String) {
        guard url.hasPrefix("vmess://") else { return nil }
        var text = String(url.dropFirst("vmess://".count))
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text),
              let link = try? JSONDecoder().decode(ShareLink.self, from: data) else { return nil }
        self = link
    }

    /// The address a client should dial for a server listening on `listen`: the operator's choice,
    /// else the listen address unless it is a wildcard (which no client can dial), else loopback.
    static func dialAddress(listen: String, override: String?) -> String {
        if let override, !override.isEmpty { return override }
        if listen.isEmpty || listen == "0.0.0.0" || listen == "::" || listen == "[::]" { return "127.0.0.1" }
        return listen
    }

    /// The remark: the inbound's tag, else the user's email, else "vmessd".
    static func remark(tag: String?, email: String?) -> String {
        if let tag, !tag.isEmpty { return tag }
        if let email, !email.isEmpty { return email }
        return "vmessd"
    }
}
