// A certificate and key made by the system's openssl for a test: self-signed, so the certificate is
// its own trust anchor (what a test passes as SSL_CERT_FILE or as a custom CA).

import Foundation

public enum SelfSignedCertificate {
    /// Writes `NAME.crt` and `NAME.key` (PEM, P-256) into `directory`, for `names` (a subjectAltName
    /// value such as "DNS:localhost,IP:127.0.0.1"); returns their URLs.
    public static func make(names: String, name: String, in directory: URL) throws -> (certificate: URL, key: URL) {
        let cert = directory.appendingPathComponent("\(name).crt"), key = directory.appendingPathComponent("\(name).key")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: try Tool.require("/usr/bin/openssl", install: "apt-get install openssl"))
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                             "-subj", "/CN=vmessd test \(name)", "-addext", "subjectAltName=\(names)",
                             "-keyout", key.path, "-out", cert.path]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw HarnessError("openssl req exited \(openssl.terminationStatus)") }
        return (cert, key)
    }
}
