import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker

// The server side of the ws and httpupgrade transports (§12) from the first byte a client sends:
// the request head (HTTPHeadLines, the request line, UpgradeRequestCheck with its early-data forms),
// the 101 or refusal, then whatever follows the head (WebSocket frames or raw stream bytes) going to
// the protocol handler. Input: configuration, flags, read-cut selector, bytes.
//   configuration (mod 7): ws "/ws"; ws path-form early data (max 2048); ws header-form early data
//   (Sec-WebSocket-Protocol); ws with host "example.com" and an "X-ED" early-data header;
//   httpupgrade "/up"; httpupgrade with "X-ED" early data (max 2048); httpupgrade with host.
//   flags bit 0: the client half-closes after its last byte.

let logger = Logger(label: "fuzz")

let kinds: [UpgradeRequestCheck.Kind] = {
    var ws = WebSocketSettings()
    ws.path = "/ws"
    var wsPath = ws
    wsPath.maxEarlyData = 2048
    var wsHeader = wsPath
    wsHeader.earlyDataHeaderName = "Sec-WebSocket-Protocol"
    var wsHost = wsPath
    wsHost.host = "example.com"
    wsHost.earlyDataHeaderName = "X-ED"
    var hu = HTTPUpgradeSettings()
    hu.path = "/up"
    var huED = hu
    huED.maxEarlyData = 2048
    huED.earlyDataHeaderName = "X-ED"
    var huHost = hu
    huHost.host = "example.com"
    return [.webSocket(ws), .webSocket(wsPath), .webSocket(wsHeader), .webSocket(wsHost),
            .httpUpgrade(hu), .httpUpgrade(huED), .httpUpgrade(huHost)]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let kind = kinds[Int(input.byte()) % kinds.count]
    let flags = input.byte()
    let selector = input.byte()
    let collector = StreamCollector()
    let handler = ServerUpgradeHandler(check: UpgradeRequestCheck(kind), logger: logger) { channel in
        try channel.pipeline.syncOperations.addHandler(collector)
    }
    let channel = ChannelHarness.connected([handler])
    let completed = ChannelHarness.feed(channel, Pieces.split(input.rest(), selector: selector, limits: Pieces.pipelineReads))
    let answer = ChannelHarness.drainOutbound(channel)
    precondition(answer.isEmpty || answer.starts(with: Array("HTTP/1.1 ".utf8)), "answered with something other than HTTP")
    if completed && flags & 1 != 0 && channel.isActive {
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }
    ChannelHarness.finish(channel)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        func ws(_ target: String, host: String = "example.com", extra: String = "") -> [UInt8] {
            Array(("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n").utf8)
        }
        func hu(_ target: String, extra: String = "") -> [UInt8] {
            Array("GET \(target) HTTP/1.1\r\nHost: example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\(extra)\r\n".utf8)
        }
        let frame: [UInt8] = [0x82, 0x85, 1, 2, 3, 4] + zip(Array("hello".utf8), [1, 2, 3, 4, 1]).map { $0 ^ $1 }
        let ed = EarlyData.encodeRaw(Array("early".utf8))
        return [
            [0, 0, 0] + ws("/ws") + frame,
            [0, 1, 1] + ws("/ws"),
            [1, 0, 0] + ws("/ws" + ed) + frame,
            [2, 0, 0] + ws("/ws", extra: "Sec-WebSocket-Protocol: \(ed)\r\n"),
            [3, 0, 0] + ws("/ws", extra: "X-ED: \(ed)\r\n"),
            [0, 0, 0] + Array("POST /ws HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            [4, 0, 0] + hu("/up") + Array("pipelined".utf8),
            [5, 0, 0] + hu("/up", extra: "X-ED: \(EarlyData.encodePadded(Array("early".utf8)))\r\n"),
            [6, 1, 5] + hu("/up?x=1"),
            [4, 0, 0] + Array("GET /up HTTP/1.0\r\n\r\n".utf8),
        ]
    }
    return 0
}
