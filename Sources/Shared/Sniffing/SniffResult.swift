/// What a look at a connection's first client bytes tells (inbound `sniffing`).
public enum SniffResult: Equatable, Sendable {
    /// The protocol, and the destination name it carries if any: "http1" with the Host header,
    /// "tls" with the ClientHello's server name, "bittorrent" without a name. The names are V2Ray's:
    /// routing rules match them by prefix (`"protocol": ["http"]` matches "http1").
    case found(protocol: String, domain: String?)
    /// The bytes so far start like a known protocol, or are too few to tell: more may decide.
    case needMore
    /// No sniffer can match these bytes, whatever follows.
    case unknown
}

/// The content sniffers of V2Ray's dispatcher for TCP (HTTP, TLS, BitTorrent), asked in its order.
/// Pure: the caller accumulates the client's first bytes and asks again after each read.
public enum ContentSniffer {
    /// How many leading bytes are looked at (V2Ray sniffs one buffer of 32,767 bytes at most): a
    /// protocol not decided within them is unknown.
    public static let window = 32 * 1024

    public static func sniff(_ bytes: ArraySlice<UInt8>) -> SniffResult {
        var undecided = false
        for sniffer in [HTTPHostSniffer.sniff, TLSServerNameSniffer.sniff, BitTorrentSniffer.sniff] {
            switch sniffer(bytes) {
            case .found(let name, let domain): return .found(protocol: name, domain: domain)
            case .needMore: undecided = true
            case .unknown: continue
            }
        }
        return undecided && bytes.count < window ? .needMore : .unknown
    }
}
