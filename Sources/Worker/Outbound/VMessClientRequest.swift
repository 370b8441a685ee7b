import Shared

/// A sealed request header and what the response side needs to know about it.
struct VMessClientRequest {
    let header: RequestHeader
    /// The bytes that open the connection, in front of the first body chunk.
    let wire: [UInt8]
    let legacy: Bool

    /// respKey/respIV (§8.1): SHA-256 halves after an AEAD header, MD5 after a legacy one.
    var responseKeys: ResponseHeader.BodyKeys { ResponseHeader.bodyKeys(request: header, legacy: legacy) }
}
