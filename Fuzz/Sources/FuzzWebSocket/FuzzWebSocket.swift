import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
@testable import Worker

// WebSocket frames (RFC 6455 §5) as both sides of the ws transport read them: NIO's frame decoder
// with the transport's size limit, then WebSocketStreamHandler (data frames to stream bytes, ping →
// pong, close → close). Input: role, flags, read-cut selector, payload.
//   role bit 0: client side (reads a server's unmasked frames) instead of server side;
//   flags bit 0: structured mode — the payload is a list of [opcode byte, length byte, bytes]
//                messages written as frames the way a peer would (masked towards a server); the
//                stream handler must then deliver exactly the data frames' bytes, in order;
//   flags bit 1: the local side writes stream data between reads (interleaving pongs and data).
//   Without bit 0 the payload is the raw byte stream.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let role: WebSocketStreamHandler.Role = input.bool() ? .client : .server
    let flags = input.byte()
    let selector = input.byte()
    let collector = StreamCollector()
    let channel = ChannelHarness.connected([
        ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: ServerUpgradeHandler.maximumFrameSize)),
        WebSocketStreamHandler(role: role),
        collector,
    ])
    var wire: [UInt8]
    var expected: [UInt8]? = nil
    if flags & 1 != 0 {
        (wire, expected) = frames(&input, masked: role == .server)
    } else {
        wire = input.rest()
    }
    var completed = true
    for piece in Pieces.split(wire, selector: selector, limits: Pieces.pipelineReads) {
        if flags & 2 != 0, channel.isActive { channel.writeAndFlush(ByteBuffer(bytes: [0x56, 0x4D]), promise: nil) }
        guard ChannelHarness.feed(channel, [piece]) else { completed = false; break }
        _ = ChannelHarness.drainOutbound(channel)
    }
    if let expected, completed {
        precondition(collector.received == expected, "stream bytes differ from the data frames sent")
    }
    ChannelHarness.finish(channel)
    return 0
}

/// Frames for [opcode, length, bytes] messages. Data frames (binary, text, continuation) carry the
/// stream; control frames get at most 125 bytes (§5.5) and a close ends the list, since nothing
/// after it is read.
func frames(_ input: inout FuzzInput, masked: Bool) -> ([UInt8], [UInt8]) {
    var out = ByteBuffer()
    var stream: [UInt8] = []
    var n: UInt8 = 0
    while input.remaining > 0 {
        let opcodes: [WebSocketOpcode] = [.binary, .text, .continuation, .ping, .pong, .connectionClose]
        let op = opcodes[Int(input.byte()) % opcodes.count]
        var payload = input.take(Int(input.byte()))
        if op.isControlOpcode { payload = Array(payload.prefix(125)) }
        if op == .connectionClose { payload = [] }
        n &+= 1
        let key: WebSocketMaskingKey? = masked ? WebSocketMaskingKey([n, 0x5A, n &* 3, 0xA5]) : nil
        WebSocketFrameHead.write(opcode: op, length: payload.count, maskKey: key, into: &out)
        if let key { WebSocketFrameHead.appendMasked(ByteBuffer(bytes: payload), key: key, to: &out) } else { out.writeBytes(payload) }
        if !op.isControlOpcode { stream += payload }
        if op == .connectionClose { break }
    }
    return (Array(out.readableBytesView), stream)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let hello = Array("hello".utf8)
        // binary, ping, text, pong, continuation, close — the frames the transport tests send.
        let messages: [UInt8] = [0, 5] + hello + [3, 2, 1, 2] + [1, 3] + Array("abc".utf8) + [4, 0] + [2, 1, 0x21] + [5, 0]
        var seeds: [[UInt8]] = [[0, 1, 0] + messages, [1, 1, 0] + messages, [0, 3, 1] + messages]
        for role: UInt8 in [0, 1] {
            var input = FuzzInput(bytes: messages)
            seeds.append([role, 0, 0] + frames(&input, masked: role == 0).0)
        }
        // A 16-bit and a 64-bit length form.
        var big = ByteBuffer()
        WebSocketFrameHead.write(opcode: .binary, length: 300, maskKey: WebSocketMaskingKey([1, 2, 3, 4]), into: &big)
        big.writeBytes([UInt8](repeating: 0x41, count: 300))
        seeds.append([0, 0, 7] + big.readableBytesView)
        seeds.append([1, 0, 0, 0x82, 127, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3])
        return seeds
    }
    return 0
}
