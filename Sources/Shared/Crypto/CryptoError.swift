import COpenSSL

/// A failure inside libcrypto, with the call that failed and OpenSSL's own error text (the error
/// queue is drained into the value so it never leaks into a later, unrelated call).
public struct CryptoError: Error, CustomStringConvertible, Equatable {
    public var call: String
    public var detail: String

    public init(_ call: String) {
        self.call = call
        var lines: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            lines.append(String(cString: buf))
        }
        self.detail = lines.joined(separator: "; ")
    }

    public var description: String { detail.isEmpty ? "\(call) failed" : "\(call) failed: \(detail)" }
}
