#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOSSL
import Shared

// Why swift-nio-ssl (BoringSSL, vendored) and not the system's libssl through a handler of our own:
//
// - It is a complete, maintained NIO handler: handshake, close_notify, half-close, renegotiation
//   refusal, writability, unwrapping into pooled ByteBuffers. A libssl handler over memory BIOs is
//   several hundred lines of unsafe code that would need the same care and its own fuzzing.
// - Every feature the config model has maps onto its API: SNI selection (sslContextCallback, applied
//   after the ClientHello), ALPN (applicationProtocols), minimum version, custom trust roots, and
//   verification off (allowInsecure).
// - Cost, measured on this 2-core machine: BoringSSL (target CNIOBoringSSL, ~400 C/assembly files)
//   takes 5.4 CPU-minutes to compile in a debug build, about 2.7 minutes of wall time on two idle
//   cores, against about 2 CPU-minutes for everything else in a first build. Only first builds pay
//   it (CI does, once per run, well inside its budget); libssl would cost nothing here. That is the
//   one argument for libssl, and it does not outweigh the handler we would have to write and trust.
// - Data path: both libraries run AES-GCM and ChaCha20 in assembly; the handler copies each record
//   once into a pooled ByteBuffer, as a libssl handler over memory BIOs would. Measured (release
//   build, one worker, the v2ray 4.34 client uploading 512 MiB, server CPU seconds per GB, one run
//   on a busy machine): tcp 1.7, tls 3.1, ws 3.3, ws+tls 3.7; the reference v2ray server in the same
//   run: 2.0, 5.4, 4.3, 7.4. TLS is not where vmessd loses to the reference.
// - The VMess codec keeps using the system libcrypto (Shared/Crypto): two copies of AES code in one
//   process cost only binary size.
//
// Contexts are built from the PEM text in the config model when a worker starts, once per inbound
// or outbound, and never cached elsewhere: a reload (SIGHUP) re-reads the files in the supervisor and
// the new generation of workers builds new contexts, which is how certificates are renewed.

/// Builds swift-nio-ssl contexts from `TLSSettings`.
enum TLSContexts {
    enum Failure: Error, CustomStringConvertible {
        case noCertificate
        case certificate(index: Int, String)
        case authority(index: Int, String)

        var description: String {
            switch self {
            case .noCertificate: "TLS on an inbound needs at least one certificate"
            case .certificate(let i, let why): "certificates[\(i)]: \(why)"
            case .authority(let i, let why): "certificate authority \(i): \(why)"
            }
        }
    }

    /// A served certificate chain, its key and the DNS names it is for (for SNI).
    struct Identity: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var names: [String]
    }

    static func server(_ tls: TLSSettings) throws -> NIOSSLContext {
        let identities = try tls.certificates.enumerated().map { index, certificate in
            try identity(certificate, index: index)
        }
        guard let first = identities.first else { throw Failure.noCertificate }
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: first.chain.map { .certificate($0) }, privateKey: .privateKey(first.key))
        apply(tls, to: &config)
        if identities.count > 1 {
            // Several certificates: pick by the ClientHello's server name; the first one is the default
            // (no SNI, or no match), as in V2Ray.
            let table = SNITable(names: identities.map(\.names))
            config.sslContextCallback = { values, promise in
                guard let name = values.serverHostname, let index = table.match(name), index != 0 else {
                    return promise.succeed(.noChanges)
                }
                var change = NIOSSLContextConfigurationOverride()
                change.certificateChain = identities[index].chain.map { .certificate($0) }
                change.privateKey = .privateKey(identities[index].key)
                promise.succeed(change)
            }
        }
        return try NIOSSLContext(configuration: config)
    }

    static func client(_ tls: TLSSettings) throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        apply(tls, to: &config)
        if tls.allowInsecure {
            config.certificateVerification = .none
        } else if !tls.authorityCertificates.isEmpty {
            let roots = try tls.authorityCertificates.enumerated().flatMap { index, pem in
                do {
                    return try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
                } catch {
                    throw Failure.authority(index: index, "\(error)")
                }
            }
            config.trustRoots = .certificates(roots)
        } else if let file = systemTrustFile {
            config.trustRoots = .file(file)
        }
        return try NIOSSLContext(configuration: config)
    }

    /// `SSL_CERT_FILE`: a PEM bundle that replaces the system's trust roots, as it does for V2Ray and
    /// every other Go program (and OpenSSL's tools). A path that does not exist fails the dial.
    static var systemTrustFile: String? {
        guard let value = getenv("SSL_CERT_FILE"), value.pointee != 0 else { return nil }
        return String(cString: value)
    }

    /// The TLS settings of a stream: the HTTP/2 transports (grpc, h2) need ALPN "h2" (what V2Ray,
    /// Xray and grpc-go offer and expect), first in the list whatever else the config names.
    static func forTransport(_ stream: StreamSettings) -> TLSSettings {
        var tls = stream.tls ?? TLSSettings()
        if stream.network == .grpc || stream.network == .h2 {
            tls.alpn = ["h2"] + tls.alpn.filter { $0 != "h2" }
        }
        return tls
    }

    /// The server name a client sends and verifies: `serverName`, else the address dialled when it
    /// is a name (SNI cannot carry an IP address; the certificate is then checked against the IP).
    static func serverHostname(_ tls: TLSSettings, host: String) -> String? {
        if let name = tls.serverName, !name.isEmpty { return name }
        return (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    private static func apply(_ tls: TLSSettings, to config: inout TLSConfiguration) {
        if !tls.alpn.isEmpty { config.applicationProtocols = tls.alpn }
        // After our close_notify, how long to wait for the peer's before closing TCP (default 5 s).
        // A proxied stream has nothing left to learn from it, and a drain should not wait on it.
        config.shutdownTimeout = .seconds(1)
        switch tls.minVersion {
        case "1.0": config.minimumTLSVersion = .tlsv1
        case "1.1": config.minimumTLSVersion = .tlsv11
        case "1.3": config.minimumTLSVersion = .tlsv13
        default: config.minimumTLSVersion = .tlsv12  // V2Ray's and Go's default
        }
    }

    private static func identity(_ c: TLSSettings.Certificate, index: Int) throws -> Identity {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(c.certificatePEM.utf8))
        } catch {
            throw Failure.certificate(index: index, "certificate \(c.certificateFile ?? "(inline)") is not a PEM certificate: \(error)")
        }
        guard let leaf = chain.first else {
            throw Failure.certificate(index: index, "no certificate in \(c.certificateFile ?? "the inline PEM")")
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(c.keyPEM.utf8), format: .pem)
        } catch {
            throw Failure.certificate(index: index, "key \(c.keyFile ?? "(inline)") is not a PEM private key: \(error)")
        }
        var names: [String] = []
        for name in leaf._subjectAlternativeNames() where name.nameType == .dnsName {
            names.append(String(decoding: name.contents, as: UTF8.self))
        }
        return Identity(chain: chain, key: key, names: names)
    }
}
