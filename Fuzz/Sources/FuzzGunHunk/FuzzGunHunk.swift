import NIOCore
@testable import FuzzSupport
@testable import Shared

// The gRPC ("gun") transport's stream decoder (GunHunkDecoder). Input: a limit byte, a cut selector
// byte, then the stream.
//   limit: maximum message size 1 + byte * 64 (so messages near and past it are reached)
// Whatever the bytes: never a trap; at most 20 bytes held between reads; the tunnelled bytes are
// never more than the input; and the stream cut into reads (Pieces) decodes to exactly what it
// decodes to in one read, with the same verdict.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let limit = 1 + Int(input.byte()) * 64
    let selector = input.byte()
    let bytes = input.rest()

    func run(_ pieces: [ArraySlice<UInt8>]) -> (out: [UInt8], failure: GunHunkDecoder.Failure?, clean: Bool) {
        var decoder = GunHunkDecoder(maximumMessageSize: limit)
        var out: [UInt8] = []
        for piece in pieces {
            do {
                try decoder.feed(ByteBuffer(bytes: piece)) { slice in
                    out += slice.readableBytesView
                    return true
                }
            } catch let failure as GunHunkDecoder.Failure {
                return (out, failure, false)
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
            precondition(decoder.heldByteCount <= 20, "held \(decoder.heldByteCount) bytes")
        }
        return (out, nil, decoder.isAtMessageBoundary)
    }

    let whole = run(bytes.isEmpty ? [] : [bytes[...]])
    precondition(whole.out.count <= bytes.count, "decoded \(whole.out.count) bytes from \(bytes.count)")
    let cut = run(Pieces.split(bytes, selector: selector))
    precondition(cut.failure == whole.failure, "verdict \(String(describing: cut.failure)) in reads vs \(String(describing: whole.failure))")
    if whole.failure == nil {
        precondition(cut.out == whole.out, "different bytes when cut into reads")
        precondition(cut.clean == whole.clean, "different end state when cut into reads")
    } else {
        // Bytes before the error come out the same way (the error may be found later in reads).
        precondition(whole.out.starts(with: cut.out) || cut.out.starts(with: whole.out), "bytes diverge before the error")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        func message(_ payload: [UInt8]) -> [UInt8] {
            var buffer = ByteBuffer()
            GunHunkEncoder.writePrefix(length: payload.count, into: &buffer)
            buffer.writeBytes(payload)
            return Array(buffer.readableBytesView)
        }
        let multi: [UInt8] = [0, 0, 0, 0, 24, 0x0A, 2, 0x61, 0x62, 0x10, 0xAC, 0x02, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 1, 0x63, 0x25]
            + [1, 2, 3, 4]
        return [
            [255, 0] + message(Array("hello".utf8)) + message([]),
            [255, 1] + message(Array("split me one byte at a time".utf8)),
            [255, 7] + message([UInt8](repeating: 0x5A, count: 300)) + message([1, 2, 3]),
            [255, 3] + multi,
            [0, 0] + message([UInt8](repeating: 1, count: 100)),
            [255, 0, 1, 0, 0, 0, 2, 0x0A, 0],
            [255, 0, 0, 0, 0, 0, 12, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            [255, 2, 0, 0, 0, 0, 2, 0x0B, 0],
        ]
    }
    return 0
}
