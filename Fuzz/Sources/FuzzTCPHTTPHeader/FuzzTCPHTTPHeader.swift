import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded
@testable import Shared
@testable import Worker

// The tcp transport's HTTP disguise from the first byte the peer sends: the server reading a request
// head (HTTPHeadLines, TCPHTTPHeader's request-line and path rules, the early start-line check, the
// 8 KiB bound) and the client reading a response head. Input: configuration, flags, read-cut
// selector, bytes.
//   configuration (mod 2): paths ["/", "/a"] with no headers; V2Ray's v4 defaults with path "/下载".
//   flags bit 0: client side (reads a response head) instead of server side.
//   flags bit 1: the peer half-closes after its last byte.
// Oracles: whatever the server answers before the protocol writes is an HTTP/1.1 refusal; the stream
// handed on is exactly the bytes behind the first blank line (never cut, never a head byte); after a
// head is taken, the first answer starts with the configured response head.

let logger = Logger(label: "fuzz")

let headers: [TCPHTTPHeader] = {
    var plain = TCPHTTPHeaderSettings()
    plain.request.paths = ["/", "/a"]
    var v4 = TCPHTTPHeaderSettings()
    v4.request.paths = ["/下载"]
    v4.request.headers = ConfigParser.defaultRequestHeadersV4
    v4.response.headers = ConfigParser.defaultResponseHeadersV4
    return [TCPHTTPHeader(settings: plain), TCPHTTPHeader(settings: v4)]
}()

/// A linear congruential generator, for seeds that do not change from one --seeds run to the next.
struct FixedRandom: RandomNumberGenerator {
    var state: UInt64 = 1
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}

/// Index just past the first "\r\n\r\n".
func headEnd(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    for i in 3..<bytes.count where bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 {
        return i + 1
    }
    return nil
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let header = headers[Int(input.byte()) % headers.count]
    let flags = input.byte()
    let selector = input.byte()
    let bytes = input.rest()
    let client = flags & 1 != 0
    let collector = StreamCollector()
    let handler: ChannelHandler = client ? TCPHTTPHeaderClientHandler(header: header)
                                         : TCPHTTPHeaderServerHandler(header: header, logger: logger)
    let channel = ChannelHarness.connected([handler, collector])
    if client {
        channel.writeAndFlush(ByteBuffer(bytes: Array("first write".utf8)), promise: nil)
        let request = ChannelHarness.drainOutbound(channel)
        precondition(request.starts(with: Array("GET ".utf8)) && request.suffix(11) == Array("first write".utf8)[...])
    }
    let completed = ChannelHarness.feed(channel, Pieces.split(bytes, selector: selector, limits: Pieces.pipelineReads))
    if !client {
        let answer = ChannelHarness.drainOutbound(channel)
        precondition(answer.isEmpty || answer.starts(with: Array("HTTP/1.1 4".utf8)), "answered with something other than a refusal")
    }
    if !collector.received.isEmpty {
        guard let end = headEnd(bytes) else { preconditionFailure("stream bytes without a head") }
        precondition(bytes[end...].starts(with: collector.received), "the stream is not the bytes behind the head")
        if completed && channel.isActive {
            precondition(collector.received.count == bytes.count - end, "stream bytes held back")
        }
        if client { precondition(bytes.starts(with: Array("HTTP/".utf8))) }
    }
    if !client && channel.isActive && headEnd(bytes) != nil {
        // The head was taken: the first answer carries the response head, once.
        channel.writeAndFlush(ByteBuffer(bytes: Array("answer".utf8)), promise: nil)
        let out = ChannelHarness.drainOutbound(channel)
        precondition(out.starts(with: Array("HTTP/1.1 200 OK\r\n".utf8)) && out.suffix(6) == Array("answer".utf8)[...])
    }
    if completed && flags & 2 != 0 && channel.isActive {
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }
    ChannelHarness.finish(channel)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        // A fixed generator: regenerated seeds stay the same bytes.
        var random = FixedRandom()
        let vmess: [UInt8] = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let response = Array(headers[1].responseHead(now: 784_111_777, using: &random).utf8)
        return [
            [0, 0, 0] + Array(headers[0].requestHead(using: &random).utf8) + vmess,
            [1, 0, 1] + Array(headers[1].requestHead(using: &random).utf8) + vmess,
            [1, 2, 5] + Array("POST /%E4%B8%8B%E8%BD%BD?x=1 HTTP/1.0\r\nHost: a\r\n\r\n".utf8) + vmess,
            [0, 0, 0] + Array("GET /wrong HTTP/1.1\r\nHost: a\r\n\r\n".utf8) + vmess,
            [0, 0, 2] + Array("GET http://example.com/a HTTP/1.1\r\n\r\n".utf8),
            [0, 0, 0] + Array("SSH-2.0-OpenSSH_9.2\r\n".utf8),
            [0, 1, 0] + response + vmess,
            [1, 1, 3] + Array("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n".utf8),
        ]
    }
    return 0
}
