import NIOCore
@testable import FuzzSupport
@testable import Shared

// The mKCP datagram path a server runs on every UDP packet (KCPListener): the packet codec (header,
// simple authenticator or seed AES-GCM), the segment parser and the session state machine.
// Input: a selector byte (header type, seed or not, clock step), then the datagram's bytes.
// Whatever the bytes: never a trap; every parsed segment re-serializes to exactly the bytes it came
// from; sealing the bytes (any but none) and opening them again gives them back; and a session fed the bytes as
// segments (both as they are and after opening) keeps running its clock without trapping.

let allocator = ByteBufferAllocator()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let bytes = input.rest()
    var settings = KCPSettings()
    settings.header = KCPSettings.HeaderType.allCases[Int(selector & 7) % KCPSettings.HeaderType.allCases.count]
    if selector & 8 != 0 { settings.seed = "fuzz" }
    let codec = try! KCPPacketCodec(settings: settings, random: 1)

    // 1. Segments: a parsed segment writes back the same bytes.
    var plain = allocator.buffer(bytes: bytes)
    var count = 0
    while let segment = KCPSegment.read(from: &plain) {
        let end = plain.readerIndex
        var out = allocator.buffer(capacity: segment.byteSize)
        segment.write(to: &out)
        precondition(out.readableBytes == segment.byteSize, "byteSize \(segment.byteSize) vs \(out.readableBytes)")
        precondition(Array(out.readableBytesView) == Array(bytes[(end - segment.byteSize)..<end]), "segment did not round-trip")
        count += 1
    }
    precondition(count <= bytes.count / 16 + 1)

    // 2. Seal then open gives the bytes back.
    var sealed = allocator.buffer(capacity: bytes.count + codec.overhead)
    codec.seal(allocator.buffer(bytes: bytes), into: &sealed)
    precondition(sealed.readableBytes == bytes.count + codec.overhead)
    // An empty datagram body is refused on opening, as V2Ray's reader refuses it (never sent).
    if !bytes.isEmpty {
        precondition(codec.open(&sealed) && Array(sealed.readableBytesView) == bytes, "seal/open round trip")
    }

    // 3. The session: the raw bytes as segments, and the bytes opened as a datagram.
    let connection = KCPConnection(conv: bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : 0,
                                   settings: settings, overhead: codec.overhead, now: 0)
    var outputs = 0
    connection.output = { segment in
        // Data segments are cut to the MSS; an ack of 128 numbers (529 bytes) fits the smallest MTU.
        precondition(segment.readableBytes + codec.overhead <= settings.mtu, "datagram over the MTU")
        outputs += 1
    }
    var now: UInt64 = 0
    let step = UInt64(selector >> 4) * 700
    for round in 0..<3 {
        var segments = allocator.buffer(bytes: bytes)
        if round == 1 {
            guard codec.open(&segments) else { continue }
        }
        connection.input(&segments, now: now)
        connection.read { _ in true }
        connection.flush(now: now)
        now += step
    }
    var more = allocator.buffer(bytes: bytes)
    connection.write(&more)
    connection.flush(now: now)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        // Segments from the codec tests' vectors: data, ack with two numbers, ping, terminate.
        let data: [UInt8] = [0x12, 0x34, 1, 0, 0, 0, 0, 0x64, 0, 0, 0, 7, 0, 0, 0, 5, 0, 2, 0x68, 0x69]
        let ack: [UInt8] = [0x12, 0x34, 0, 1, 0, 0, 1, 0x20, 0, 0, 1, 0, 0, 0, 0xAB, 0xCD, 2, 0, 0, 1, 1, 0, 0, 1, 3]
        let ping: [UInt8] = [0x12, 0x34, 3, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0xC8]
        let terminate: [UInt8] = [0x12, 0x34, 2, 1, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0xC8]
        let first: [UInt8] = [0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
        // The same data segment sealed by the simple authenticator (codec test vector).
        let sealed: [UInt8] = [0x01, 0xf1, 0xa8, 0xf5, 0x01, 0xe5, 0xba, 0xc1, 0x00, 0xe5, 0xba, 0xc1, 0x00, 0x81,
                               0xba, 0xc1, 0x00, 0x86, 0xba, 0xc1, 0x00, 0x83, 0xba, 0xc3, 0x68, 0xea]
        return [
            [0x10] + data, [0x10] + ack, [0x20] + ping, [0x30] + terminate, [0x10] + first + ack + ping,
            [0x00] + sealed, [0x13] + [0xA1, 0x08, 0, 0, 0, 1, 0, 0x10, 0x11, 0x18, 0x30, 0x22, 0x30] + sealed,
            [0xF0] + data + data + ack, [0x18] + first,
        ]
    }
    return 0
}
