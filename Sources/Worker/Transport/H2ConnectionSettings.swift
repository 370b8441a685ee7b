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
        return c
    }

    var stream: NIOHTTP2Handler.StreamConfiguration {
        var s = NIOHTTP2Handler.StreamConfiguration()
        s.targetWindowSize = windowSize
        s.outboundBufferSizeHighWatermark = Self.writeHighWatermark
        s.outboundBufferSizeLowWatermark = Self.writeLowWatermark
        return s
    }
}
