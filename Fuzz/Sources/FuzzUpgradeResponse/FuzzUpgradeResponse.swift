import FuzzSupport
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker

// The client side of the ws and httpupgrade transports (§12) reading the server's answer:
// UpgradeResponseHead over HTTPHeadLines, the checks V2Ray's and Xray's dialers make
// (ClientUpgradeRequest.validate), then the stream behind the 101 (frames for ws). Input:
// configuration, flags, read-cut selector, response bytes.
//   configuration (mod 4): ws (fixed key, so a seed can carry the right Sec-WebSocket-Accept); ws with
//   header-form early data (the request waits for the first write); httpupgrade; httpupgrade with
//   Xray's pipelined early data.
//   flags bit 0: the local side writes before the answer arrives (held, or pipelined).

let key = "dGhlIHNhbXBsZSBub25jZQ=="

let requests: [ClientUpgradeRequest] = {
    var ws = WebSocketSettings()
    ws.path = "/ws"
    var wsED = ws
    wsED.maxEarlyData = 2048
    wsED.earlyDataHeaderName = "Sec-WebSocket-Protocol"
    var hu = HTTPUpgradeSettings()
    hu.path = "/up"
    var huPipelined = hu
    huPipelined.maxEarlyData = 2048
    return [ClientUpgradeRequest(webSocket: ws, authority: "example.com", key: key),
            ClientUpgradeRequest(webSocket: wsED, authority: "example.com", key: key),
            ClientUpgradeRequest(httpUpgrade: hu, authority: "example.com"),
            ClientUpgradeRequest(httpUpgrade: huPipelined, authority: "example.com")]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let request = requests[Int(input.byte()) % requests.count]
    let flags = input.byte()
    let selector = input.byte()
    let channel = EmbeddedChannel()
    let ready = channel.eventLoop.makePromise(of: Void.self)
    try! channel.pipeline.syncOperations.addHandlers([
        ClientUpgradeHandler(request: request, ready: ready, timeout: .seconds(4)), StreamCollector(),
    ])
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    if flags & 1 != 0 || request.waitsForFirstWrite {
        channel.writeAndFlush(ByteBuffer(bytes: Array("first write".utf8)), promise: nil)
    }
    _ = ChannelHarness.drainOutbound(channel)
    ChannelHarness.feed(channel, Pieces.split(input.rest(), selector: selector, limits: Pieces.pipelineReads))
    _ = ChannelHarness.drainOutbound(channel)
    ChannelHarness.finish(channel)
    ready.fail(ChannelError.ioOnClosedChannel)  // no-op if it completed; never left open
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let accept = UpgradeRequestCheck.acceptValue(key: key)
        let ws = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n".utf8)
        let hu = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".utf8)
        let frame: [UInt8] = [0x82, 0x05] + Array("hello".utf8)
        return [
            [0, 0, 0] + ws + frame,
            [1, 1, 1] + ws,
            [2, 0, 0] + hu + Array("stream".utf8),
            [3, 1, 0] + hu,
            [0, 0, 0] + Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8),
            [2, 0, 3] + Array("HTTP/1.1 101 Switching protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".utf8),
        ]
    }
    return 0
}
