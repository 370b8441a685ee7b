// TLS settings of an inbound: v4 `tlsSettings` and v5 `securitySettings` (security "tls").
//
// Certificates named by file are read here, at parse time, so that a missing or unreadable file is a
// config error naming the JSON path (and `vmessd test` catches it), and so that every worker of a
// generation serves the same bytes. Relative file names are resolved against the current directory,
// as V2Ray does (not against the config file's directory).
//
// Several TLS keys only configure how a *client* verifies a server (pinned chains, system roots,
// session resumption, ECH). vmessd's client honours serverName, allowInsecure, alpn and certificates
// with usage "verify" (custom CAs); the rest are accepted and have no effect; each list below names them.

import struct Foundation.Data

extension ConfigParser {
    /// A PEM file larger than this is not a certificate chain.
    static let maximumPEMFileSize = 1 << 20

    /// Client-side hints in v4 `tlsSettings` (see the file comment).
    static let clientOnlyTLSKeysV4 = ["enableSessionResumption", "disableSystemRoot",
                                      "pinnedPeerCertificateChainSha256", "echConfig", "echDohServer"]
    /// The same hints in v5 `securitySettings`, by their protojson names.
    static let clientOnlyTLSKeysV5 = ["enableSessionResumption", "disableSystemRoot",
                                      "pinnedPeerCertificateChainSha256", "allowInsecureIfPinnedPeerCertificate",
                                      "echConfig", "echDOHserver", "echQueryDomain"]

    /// v4 `tlsSettings`: {serverName, allowInsecure, alpn, minVersion, certificates[], …}.
    static func readTLSV4(_ node: ConfigNode) throws -> TLSSettings {
        var r = try node.object()
        var tls = TLSSettings()
        tls.serverName = try r.take("serverName").map(readOptionalString) ?? nil
        tls.allowInsecure = try r.take("allowInsecure")?.bool() ?? false
        if let alpn = r.take("alpn") {
            tls.alpn = try readALPN(alpn)
        }
        if let version = r.take("minVersion") {
            // Xray's v4 spelling: "1.0" … "1.3".
            let text = try version.string()
            guard ["1.0", "1.1", "1.2", "1.3"].contains(text) else { throw version.mismatch("one of 1.0, 1.1, 1.2, 1.3") }
            tls.minVersion = text
        }
        if let certificates = r.take("certificates") {
            try readCertificates(certificates, format: .v4, into: &tls)
        }
        for key in clientOnlyTLSKeysV4 { r.ignore(key) }
        try r.requireOff("verifyClientCertificate")
        try r.finish(unsupported: ["maxVersion", "cipherSuites", "rejectUnknownSni", "fingerprint"])
        return tls
    }

    /// v5 `securitySettings` for tls (message v2ray.core.transport.internet.tls.Config): {certificate[],
    /// serverName, nextProtocol, allowInsecure, minVersion, maxVersion, …}. `alpn` is accepted as an
    /// alias of nextProtocol since v4 configs call it that.
    static func readTLSV5(_ node: ConfigNode) throws -> TLSSettings {
        var r = try node.object(protoNames: true)
        var tls = TLSSettings()
        tls.serverName = try r.take("serverName").map(readOptionalString) ?? nil
        tls.allowInsecure = try r.take("allowInsecure")?.bool() ?? false
        let nextProtocol = r.take("nextProtocol")
        let alpn = r.take("alpn")
        if nextProtocol != nil, let alpn {
            throw alpn.error("give either \"nextProtocol\" or \"alpn\", not both")
        }
        if let list = nextProtocol ?? alpn {
            tls.alpn = try readALPN(list)
        }
        if let version = r.take("minVersion") {
            tls.minVersion = try readTLSVersionV5(version)
        }
        if let version = r.take("maxVersion"), try readTLSVersionV5(version) != nil {
            // Only the default (no cap) is implemented.
            throw version.error("\"maxVersion\" is not supported by vmessd yet")
        }
        if let certificates = r.take("certificate") {
            try readCertificates(certificates, format: .v5, into: &tls)
        }
        for key in clientOnlyTLSKeysV5 { r.ignore(key) }
        try r.requireOff("verifyClientCertificate")
        try r.finish(unsupported: ["ciphersuites"])
        return tls
    }

    /// v5 TLSVersion enum by name or number: Default (0) → nil, TLS1_0 (1) … TLS1_3 (4) → "1.0" … "1.3".
    static func readTLSVersionV5(_ node: ConfigNode) throws -> String? {
        let versions = [nil, "1.0", "1.1", "1.2", "1.3"]
        let names = ["Default", "TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"]
        switch node.value {
        case .number: return versions[try node.int(0...4)]
        case .string(let text):
            guard let index = names.firstIndex(where: { $0.lowercased() == text.lowercased() }) else {
                throw node.mismatch("one of Default, TLS1_0, TLS1_1, TLS1_2, TLS1_3")
            }
            return versions[index]
        default: throw node.mismatch("one of Default, TLS1_0, TLS1_1, TLS1_2, TLS1_3")
        }
    }

    /// An array of protocol names, or (as V2Ray's StringList allows) one comma-separated string.
    static func readALPN(_ node: ConfigNode) throws -> [String] {
        let names: [String]
        if case .string(let text) = node.value {
            // "h2, http/1.1": ALPN ids never contain spaces, so dropping them all trims each item.
            names = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0.filter { $0 != " " }) }
        } else {
            names = try node.strings()
        }
        for name in names where name.isEmpty || name.utf8.count > 255 {
            throw node.error("an ALPN protocol name must be 1-255 bytes")  // RFC 7301 §3.1
        }
        return names
    }

    // MARK: certificates

    /// Usage of a certificate entry: served by a TLS server, or trusted by a TLS client as a CA.
    enum CertificateUsage { case encipherment, verify }

    /// The entries of `certificates` split by usage into `tls.certificates` and `tls.authorityCertificates`.
    static func readCertificates(_ node: ConfigNode, format: ConfigFormat, into tls: inout TLSSettings) throws {
        for entry in try node.array() {
            var r = try entry.object(protoNames: format == .v5)
            let usage = try r.take("usage").map(readUsage) ?? .encipherment
            switch usage {
            case .encipherment:
                tls.certificates.append(try readCertificate(entry, format: format))
            case .verify:
                tls.authorityCertificates.append(try readAuthority(entry, format: format))
            }
        }
    }

    /// A CA entry (usage "verify"): a certificate, from a file or inline, and no key.
    static func readAuthority(_ node: ConfigNode, format: ConfigFormat) throws -> String {
        var r = try node.object(protoNames: format == .v5)
        let file = r.take("certificateFile")
        let inline = format == .v4 ? r.take("certificate") : try oneOf(r.take("Certificate"), r.take("certificate"))
        r.ignore("usage")
        try r.finish()
        let names = ("certificateFile", format == .v4 ? "certificate" : "Certificate")
        return try readPEM(kind: "certificate", file: file, inline: inline, in: node, names: names, format: format).0
    }

    /// One served certificate entry. v4: {certificateFile | certificate: [lines], keyFile | key: [lines], usage};
    /// v5: {certificateFile | Certificate, keyFile | Key, usage}.
    static func readCertificate(_ node: ConfigNode, format: ConfigFormat) throws -> TLSSettings.Certificate {
        var r = try node.object(protoNames: format == .v5)
        let certificateFile = r.take("certificateFile")
        let keyFile = r.take("keyFile")
        let certificate: ConfigNode?
        let key: ConfigNode?
        if format == .v4 {
            certificate = r.take("certificate")
            key = r.take("key")
        } else {
            // protojson names the bytes fields "Certificate" and "Key"; the lower-case v4 spelling is
            // accepted too because people carry v4 habits over.
            certificate = try oneOf(r.take("Certificate"), r.take("certificate"))
            key = try oneOf(r.take("Key"), r.take("key"))
        }
        r.ignore("usage")  // read by readCertificates
        try r.finish()

        let inlineCertificateKey = format == .v4 ? "certificate" : "Certificate"
        let inlineKeyKey = format == .v4 ? "key" : "Key"
        let (certificatePEM, certificatePath) = try readPEM(
            kind: "certificate", file: certificateFile, inline: certificate, in: node,
            names: ("certificateFile", inlineCertificateKey), format: format)
        let (keyPEM, keyPath) = try readPEM(
            kind: "key", file: keyFile, inline: key, in: node, names: ("keyFile", inlineKeyKey), format: format)
        return TLSSettings.Certificate(certificatePEM: certificatePEM, keyPEM: keyPEM,
                                       certificateFile: certificatePath, keyFile: keyPath)
    }

    static func oneOf(_ a: ConfigNode?, _ b: ConfigNode?) throws -> ConfigNode? {
        if a != nil, let b { throw b.error("this field is given twice (under two spellings)") }
        return a ?? b
    }

    /// v4 names ("encipherment", "verify", case-insensitive) or the v5 enum (ENCIPHERMENT = 0,
    /// AUTHORITY_VERIFY = 1). Issuing certificates on the fly and client-certificate CAs are not implemented.
    static func readUsage(_ node: ConfigNode) throws -> CertificateUsage {
        switch node.value {
        case .number:
            switch try node.int(0...3) {
            case 0: return .encipherment
            case 1: return .verify
            default: throw node.error("certificate usage \(node.shortDescription) is not supported by vmessd yet")
            }
        case .string(let text):
            switch text.lowercased() {
            case "encipherment": return .encipherment
            case "verify", "authority_verify": return .verify
            case "issue", "verifyclient", "authority_issue", "authority_verify_client":
                throw node.error("certificate usage \(JSONC.quote(text)) is not supported by vmessd yet")
            default:
                throw node.mismatch("\"encipherment\" or \"verify\"")
            }
        default:
            throw node.mismatch("\"encipherment\" or \"verify\"")
        }
    }

    /// The PEM text of a certificate or key, from exactly one of its file or its inline form.
    static func readPEM(kind: String, file: ConfigNode?, inline: ConfigNode?, in entry: ConfigNode,
                       names: (file: String, inline: String), format: ConfigFormat) throws -> (String, String?) {
        switch (file, inline) {
        case (nil, nil):
            throw entry.error("missing \(kind): give \(JSONC.quote(names.file)) or \(JSONC.quote(names.inline))")
        case (_?, let inline?):
            throw inline.error("give either \(JSONC.quote(names.file)) or \(JSONC.quote(names.inline)), not both")
        case (let file?, nil):
            let path = try file.string()
            guard !path.isEmpty, !path.utf8.contains(0) else { throw file.mismatch("a file path") }
            // Messages quote the whole path (up to PATH_MAX): a shortened path is no help to the operator.
            let bytes: [UInt8]
            do {
                bytes = try FileContents.load(path, limit: maximumPEMFileSize)
            } catch let failure as FileContents.Failure {
                throw file.error("cannot read \(kind) file \(JSONC.quote(path, limit: 4096)): \(failure.reason)")
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard looksLikePEM(text) else {
                throw file.error("\(kind) file \(JSONC.quote(path, limit: 4096)) is not PEM (no \"-----BEGIN\" line)")
            }
            return (text, path)
        case (nil, let inline?):
            let text = try inlinePEM(inline, format: format)
            guard looksLikePEM(text) else { throw inline.error("the \(kind) is not PEM (no \"-----BEGIN\" line)") }
            return (text, nil)
        }
    }

    /// v4: an array of lines (V2Ray joins them with "\n"), or one string. v5: protojson bytes, i.e. the
    /// PEM file base64-encoded; PEM text given directly (or as lines) is accepted too.
    static func inlinePEM(_ node: ConfigNode, format: ConfigFormat) throws -> String {
        switch node.value {
        case .array:
            return try node.strings().joined(separator: "\n") + "\n"
        case .string(let text):
            if format == .v4 || looksLikePEM(text) { return text }
            guard let data = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else {
                throw node.mismatch("PEM text or base64 of it")
            }
            return String(decoding: data, as: UTF8.self)
        default:
            throw node.mismatch(format == .v4 ? "an array of PEM lines" : "PEM text or base64 of it")
        }
    }

    /// A cheap shape check so that a key file named as a certificate (or a DER file) fails here with a
    /// path, not later inside OpenSSL. The worker's TLS setup does the real parsing.
    static func looksLikePEM(_ text: String) -> Bool {
        text.contains("-----BEGIN")
    }
}
