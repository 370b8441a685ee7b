// An independent VMess AEAD client for the transport tests, on a raw socket: it builds the request with
// the Shared codec (as VMessServerHandlerTests does) and controls exactly which bytes go out in which
// write — which is the point: the upgrade request, the VMess header and the first chunk can be sent in
// ONE write (Xray's pipelining httpupgrade client), or the header can ride inside the upgrade request
// as WebSocket early data. No real client covers those cases (v2ray 4.34 has neither).

import Foundation
import NIOCore
import Shared
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

final class TestVMessSession {
    let request: RequestHeader
    private let cmdKey: [UInt8]
    private let encoder: BodyEncoder
    private let allocator = ByteBufferAllocator()

    // Response side: 18-byte sealed length, sealed header, then body chunks (§8.3).
    private var responseBytes = ByteBuffer()
    private var decoder: BodyDecoder?
    private(set) var plaintext = Data()
    private(set) var ended = false

    init(uuid: String, targetPort: UInt16) throws {
        guard let id = UserID(text: uuid) else { throw HarnessError("bad uuid \(uuid)") }
        cmdKey = id.cmdKey
        request = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16),
                                responseAuth: UInt8.random(in: 0...255),
                                options: [.chunkStream, .chunkMasking, .globalPadding],
                                security: .aes128GCM, command: .tcp, port: targetPort, address: .ipv4([127, 0, 0, 1]))
        encoder = try BodyEncoder(.request(request))
    }

    /// The sealed AEAD request header followed by the first payload chunk(s).
    func opening(_ firstPayload: [UInt8]) throws -> [UInt8] {
        try AEADHeader.seal(request, cmdKey: cmdKey, time: Int64(Date().timeIntervalSince1970)) + body(firstPayload)
    }

    func body(_ payload: [UInt8]) throws -> [UInt8] {
        var buffer = allocator.buffer(bytes: payload)
        let out = try encoder.encode(&buffer, allocator: allocator)
        return out.getBytes(at: out.readerIndex, length: out.readableBytes) ?? []
    }

    func end() throws -> [UInt8] {
        var out = allocator.buffer(capacity: 64)
        try encoder.encodeEnd(into: &out)
        return out.getBytes(at: out.readerIndex, length: out.readableBytes) ?? []
    }

    /// Feeds bytes of the response stream; decoded payload accumulates in `plaintext`.
    func receive(_ bytes: [UInt8]) throws {
        responseBytes.writeBytes(bytes)
        let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
        if decoder == nil {
            guard responseBytes.readableBytes >= 18 else { return }
            let sealedLength = responseBytes.getBytes(at: responseBytes.readerIndex, length: 18)!
            guard let length = ResponseHeader.openAEADLength(sealedLength, keys: keys) else {
                throw HarnessError("response header length does not open")
            }
            guard responseBytes.readableBytes >= 18 + length + 16 else { return }
            responseBytes.moveReaderIndex(forwardBy: 18)
            let sealed = responseBytes.readBytes(length: length + 16)!
            guard let header = ResponseHeader.openAEADHeader(sealed, keys: keys), header.first == request.responseAuth else {
                throw HarnessError("response header does not open or has the wrong auth byte")
            }
            decoder = try BodyDecoder(.response(request, keys: keys))
        }
        if let decoder {
            let done = try decoder.decode(&responseBytes) { plaintext.append(contentsOf: $0.readableBytesView) }
            if done { ended = true }
            responseBytes.discardReadBytes()
        }
    }
}

/// Reads an HTTP response head from `fd`: the head's text and any bytes that followed it.
func readHTTPHead(_ fd: Int32, deadline: Date) throws -> (head: String, rest: [UInt8]) {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        if let end = bytes.indices.dropFirst(3).first(where: { bytes[$0 - 3...$0] == [13, 10, 13, 10] }) {
            return (String(decoding: bytes[...end], as: UTF8.self), Array(bytes[(end + 1)...]))
        }
        let r = try chunk.withUnsafeMutableBytes { try Sock.readSome(fd, $0) }
        switch r {
        case .data(let n): bytes += chunk[0..<n]
        case .eof: throw HarnessError("connection closed before a full HTTP response head (got \(String(decoding: bytes, as: UTF8.self).debugDescription))")
        case .wouldBlock:
            if Date() >= deadline { throw SocketError.timeout("HTTP response head: got \(bytes.count) bytes") }
        }
    }
}

/// Drives `payload` through a VMess session on `fd` to an echo target and checks the echo byte for
/// byte. `wrap` turns VMess bytes into what goes on the wire (identity for raw streams, a masked
/// WebSocket frame for ws); `unwrap` turns wire bytes back into VMess bytes (nil: the stream ended).
/// `initialWire` are response bytes already read (behind the 101).
func runVMessEcho(fd: Int32, session: TestVMessSession, payload: [UInt8], sentAlready: Int,
                  initialWire: [UInt8], wrap: @escaping ([UInt8]) -> [UInt8],
                  unwrap: @escaping ([UInt8]) throws -> [UInt8]?, timeout: TimeInterval, label: String) throws {
    Sock.setTimeouts(fd, seconds: 0.25)
    let deadline = Date().addingTimeInterval(timeout)
    let writer = BackgroundTask<Void>("writer-\(label)") {
        var offset = sentAlready
        while offset < payload.count {
            let n = min(32 * 1024, payload.count - offset)
            let wire = wrap(try session.body(Array(payload[offset..<(offset + n)])))
            try wire.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "\(label): upload") }
            offset += n
        }
    }
    if let first = try unwrap(initialWire) { try session.receive(first) }
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while session.plaintext.count < payload.count {
        let r = try chunk.withUnsafeMutableBytes { try Sock.readSome(fd, $0) }
        switch r {
        case .data(let n):
            guard let bytes = try unwrap(Array(chunk[0..<n])) else {
                throw HarnessError("\(label): stream closed after \(session.plaintext.count) of \(payload.count) echoed bytes")
            }
            try session.receive(bytes)
        case .eof:
            throw HarnessError("\(label): EOF after \(session.plaintext.count) of \(payload.count) echoed bytes [writer: \(InteropTestCase.describe(writer.join(timeout: 1)))]")
        case .wouldBlock:
            if Date() >= deadline {
                throw SocketError.timeout("\(label): echoed \(session.plaintext.count) of \(payload.count) bytes")
            }
        }
    }
    try writer.value(timeout: max(1, deadline.timeIntervalSinceNow), what: "\(label): writer did not finish")
    // The end of the upload goes out only now: once one direction has ended, V2Ray's policy (and so
    // the server's) gives the other one just `downlinkOnly` (1 s) of silence, which a loaded test
    // machine can exceed while the echo is still in flight.
    let end = wrap(try session.end())
    try end.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "\(label): end") }
    if let mismatch = describeMismatch(expected: Data(payload), actual: session.plaintext) {
        throw HarnessError("\(label): echoed data differs: \(mismatch)")
    }
}
