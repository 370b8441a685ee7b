/// mKCP transport settings (v4 `kcpSettings`, v5 kcp `transportSettings`), with V2Ray's defaults and
/// the sizes V2Ray derives from them (v2fly transport/internet/kcp/config.go). Sizes are in bytes here;
/// the v4 JSON gives the buffers in MiB.
public struct KCPSettings: Codable, Equatable, Sendable {
    /// The packet disguise in front of every datagram (`header.type`); raw values are the v4 names.
    public enum HeaderType: String, Codable, Sendable, CaseIterable {
        case none, srtp, utp, wechatVideo = "wechat-video", dtls, wireguard
    }

    /// Largest datagram, header and security overhead included (V2Ray accepts 576...1460).
    public var mtu = 1350
    /// Transmission interval in ms: how often the sender flushes and retransmits (10...100).
    public var tti = 50
    /// MB/s the link is assumed to carry each way; they size the in-flight windows.
    public var uplinkCapacity = 5
    public var downlinkCapacity = 20
    /// Shrink the sending window on loss (V2Ray's simple loss-rate rule), off by default.
    public var congestion = false
    public var readBufferSize = 2 * 1024 * 1024
    public var writeBufferSize = 2 * 1024 * 1024
    public var header: HeaderType = .none
    /// Obfuscation key: AES-128-GCM over every packet instead of the FNV checksum.
    public var seed: String?

    public init() {}

    /// Segments in flight toward the peer per TTI (at least 8).
    public var sendingInFlightSize: Int { Self.inFlight(capacity: uplinkCapacity, mtu: mtu, tti: tti) }
    /// Segments the receiving window spans (announced to the peer, at least 8).
    public var receivingInFlightSize: Int { Self.inFlight(capacity: downlinkCapacity, mtu: mtu, tti: tti) }
    /// Segments queued for sending before writes wait.
    public var sendingBufferSize: Int { max(writeBufferSize / mtu, 1) }

    /// V2Ray computes this in uint32; capacities are bounded by the parser so nothing wraps.
    static func inFlight(capacity: Int, mtu: Int, tti: Int) -> Int {
        max(capacity * 1024 * 1024 / mtu / (1000 / tti), 8)
    }
}
