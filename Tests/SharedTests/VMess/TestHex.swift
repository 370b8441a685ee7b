import NIOCore

/// Hex helpers for golden vectors (spaces ignored).
func hex(_ s: String) -> [UInt8] {
    let c = Array(s.filter { !$0.isWhitespace })
    precondition(c.count % 2 == 0)
    return stride(from: 0, to: c.count, by: 2).map { UInt8(String(c[$0...$0 + 1]), radix: 16)! }
}

func hexString(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

func range(_ from: UInt8, _ count: Int) -> [UInt8] { (0..<count).map { from + UInt8($0) } }

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
}

import Foundation
