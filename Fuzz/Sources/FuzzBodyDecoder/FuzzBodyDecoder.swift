import FuzzSupport
import NIOCore
@testable import Shared

// The VMess body decoder (vmess-protocol.md §9) for every security and option set, TCP and UDP,
// request and response direction. Input: security, options, flags, read-cut selector, payload.
//   security: index into Security.allCases (0 unknown→legacy, 1 legacy, 2 auto (refused), 3 gcm,
//             4 chacha, 5 none, 6 zero); options: the low five bits of the request's option byte
//             (chunk stream, reuse, masking, global padding, authenticated length).
//   flags bit 0: UDP (command 2: one datagram per chunk); bit 1: response direction;
//   bit 2: structured mode — the payload is a list of [length byte, bytes] messages that the
//          BodyEncoder with the same parameters turns into a valid body (plus its end chunk); the
//          decoder must then give back exactly those messages. Bit 3 (structured only): flip one
//          bit at a fuzzed offset first, after which the decoder may fail but must not crash.
//   Without bit 2 the payload is fed to the decoder as received bytes.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let security = Security.allCases[Int(input.byte()) % Security.allCases.count]
    let options = input.byte() & 0x1F
    let flags = input.byte()
    let selector = input.byte()
    let packet = flags & 1 != 0
    let header = HandshakeDriver.vectorRequest(security: security, options: options, command: packet ? .udp : .tcp)
    let parameters: BodyParameters
    do {
        parameters = flags & 2 != 0
            ? try BodyParameters.response(header, keys: ResponseHeader.bodyKeys(request: header, legacy: false))
            : try BodyParameters.request(header)
    } catch {
        return 0  // auto, or padding without masking: refused before any body byte is read
    }
    let decoder = try! BodyDecoder(parameters)
    var wire: [UInt8]
    var expected: [[UInt8]]? = nil
    if flags & 4 != 0 {
        let flip = flags & 8 != 0 ? Int(input.uint16()) : nil
        var messages: [[UInt8]] = []
        while input.remaining > 0 {
            let n = Int(input.byte())
            messages.append(input.take(n))
        }
        (wire, messages) = encode(messages, parameters: parameters, packet: packet)
        if let flip, !wire.isEmpty {
            wire[flip % wire.count] ^= 1 << (flip >> 13)
        } else {
            expected = messages
        }
    } else {
        wire = input.rest()
    }
    var received: [[UInt8]] = []
    var finished = false
    do {
        for piece in Pieces.split(wire, selector: selector) {
            var buffer = ByteBuffer(bytes: piece)
            finished = try decoder.decode(&buffer) { received.append(Array($0.readableBytesView)) }
            precondition(buffer.readableBytes == 0, "decoder left bytes in the read buffer")
            precondition(decoder.bufferedBytes <= 65_535 + 18 + 64, "decoder holds more than one chunk")
        }
    } catch {
        precondition(expected == nil, "valid body rejected: \(error)")
        return 0
    }
    if let expected {
        if packet && parameters.chunked {
            precondition(received == expected, "datagrams differ")
        } else {
            precondition(received.joined().elementsEqual(expected.joined()), "stream differs")
        }
        precondition(finished == parameters.chunked, "end of stream \(finished) in a body that \(parameters.chunked ? "has" : "lacks") one")
    }
    return 0
}

/// The body a sender with these parameters writes for `messages`, and the messages as the receiver
/// should see them (UDP drops empty datagrams: an empty chunk is the end marker, §9.11, and the
/// encoder drops ones too large for a 2048-byte chunk, §9.7).
func encode(_ messages: [[UInt8]], parameters: BodyParameters, packet: Bool) -> ([UInt8], [[UInt8]]) {
    let encoder = try! BodyEncoder(parameters)
    var out = ByteBuffer()
    var sent: [[UInt8]] = []
    for m in messages {
        if packet {
            guard !m.isEmpty else { continue }
            let written = m.withUnsafeBytes { try! encoder.encodeDatagram($0, into: &out) }
            if written { sent.append(m) }
        } else {
            var payload = ByteBuffer(bytes: m)
            var chunk = try! encoder.encode(&payload, allocator: ByteBufferAllocator())
            out.writeBuffer(&chunk)
            sent.append(m)
        }
    }
    try! encoder.encodeEnd(into: &out)
    return (Array(out.readableBytesView), sent)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        var seeds: [[UInt8]] = []
        let text = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        // Every security × the option sets of the §14 vectors, both directions, TCP and UDP: a
        // structured seed (messages) and the encoded body itself as a raw seed.
        for s in 0..<UInt8(Security.allCases.count) {
            for options: UInt8 in [0x00, 0x01, 0x05, 0x0D, 0x1D, 0x15] {
                for flags: UInt8 in [0, 1, 2, 3] {
                    let structured = [s, options, flags | 4, 0, UInt8(text.count)] + text + [5] + Array("hello".utf8)
                    seeds.append(structured)
                    let security = Security.allCases[Int(s)]
                    let h = HandshakeDriver.vectorRequest(security: security, options: options, command: flags & 1 != 0 ? .udp : .tcp)
                    guard let p = try? (flags & 2 != 0 ? BodyParameters.response(h, keys: ResponseHeader.bodyKeys(request: h, legacy: false))
                                                       : BodyParameters.request(h)) else { continue }
                    seeds.append([s, options, flags, 0] + encode([text, Array("hello".utf8)], parameters: p, packet: flags & 1 != 0).0)
                }
            }
        }
        return seeds
    }
    return 0
}
