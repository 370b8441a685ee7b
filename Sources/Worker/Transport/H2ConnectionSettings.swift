import NIOHTTP2

/// The HTTP/2 settings of the gRPC and h2 transports, both sides. The numbers bound what one peer can
/// make a worker hold: at most `maxConcurrentStreams` streams per connection, each with at most
/// `windowSize` bytes received but not yet taken by its relay (NIO re-opens a stream's window only for
/// bytes delivered to the stream's pipeline, and delivery waits for the relay's read()).
struct H2ConnectionSettings {
    /// grpc-go's server default is unlimited, Go's net/http 250, NIO's 100.
    static let maxConcurrentStreams = 100
    /// Per-stream receive window. 65535 (HTTP/2's initial) caps one stream at 64 KiB per round trip;
    /// 256 KiB keeps a long-distance stream busy. Xray's `initial_windows_size` overrides it.
    static let defaultWindowSize = 256 * 1024
    /// Outbound bytes a stream channel queues before it reports itself not writable (the relay then
    /// stops reading the other side): a few VMess chunks.
    static let writeHighWatermark = 64 * 1024
    static let writeLowWatermark = 32 * 1024
    /// PING (and SETTINGS, PRIORITY) frames a peer may send per second. NIO's default, 200 per 30 s,
    /// is far below what grpc-go's flow-control estimator sends on a busy download (a PING with
    /// nearly every burst of data it receives, about one per MiB here): V2Ray 4.45's client got
    /// GOAWAY ENHANCE_YOUR_CALM some 300 MB into a benchmark, and every stream on the connection
    /// died with it. 2,000 a second still stops a flood; the limiter keeps a timestamp per frame in
    /// the window, so the window stays short (16 KiB at most per connection).
    static let controlFramesPerSecond = 2_000
    /// RST_STREAM frames a peer may send per 10 s (Rapid Reset, CVE-2023-44487). Go clients reset a
    /// stream whenever a proxied connection closes first; NIO's 200 per 30 s would end a busy
    /// client's connection, and every stream on it.
    static let resetFramesPerTenSeconds = 1_000

    let windowSize: Int

    init(windowSize: Int?) {
        self.windowSize = windowSize ?? Self.defaultWindowSize
    }

    func connection(server: Bool) -> NIOHTTP2Handler.ConnectionConfiguration {
        var c = NIOHTTP2Handler.ConnectionConfiguration()
        var settings: HTTP2Settings = [
            HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 * 1024),
        ]
        if server {
            settings.append(HTTP2Setting(parameter: .maxConcurrentStreams, value: Self.maxConcurrentStreams))
        } else {
            // A client accepts no pushed streams.
            settings.append(HTTP2Setting(parameter: .enablePush, value: 0))
        }
        c.initialSettings = settings
        // The connection window is refilled as frames arrive (the streams' windows do the bounding);
        // larger than one stream's so several streams can run at full speed.
        c.targetWindowSize = max(windowSize * 4, 1 << 20)
        c.controlFrameRateLimit.maximumCount = Self.controlFramesPerSecond
        c.controlFrameRateLimit.windowLength = .seconds(1)
        return c
    }

    var stream: NIOHTTP2Handler.StreamConfiguration {
        var s = NIOHTTP2Handler.StreamConfiguration()
        s.targetWindowSize = windowSize
        s.outboundBufferSizeHighWatermark = Self.writeHighWatermark
        s.outboundBufferSizeLowWatermark = Self.writeLowWatermark
        s.streamResetFrameRateLimit.maximumCount = Self.resetFramesPerTenSeconds
        s.streamResetFrameRateLimit.windowLength = .seconds(10)
        return s
    }
}
