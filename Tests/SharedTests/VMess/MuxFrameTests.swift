import NIOCore
import XCTest
@testable import Shared

/// The §14 Mux vectors, incremental parsing and hostile frames.
final class MuxFrameTests: XCTestCase {
    let a = ByteBufferAllocator()

    func encode(_ f: MuxFrame) -> [UInt8] {
        var b = a.buffer(capacity: 64)
        f.write(into: &b)
        return b.bytes
    }

    func testVectors() throws {
        let new = MuxFrame(sessionID: 1, status: .new, network: .tcp, port: 443, address: .domain("example.com"),
                           data: a.buffer(string: "hello"))
        XCTAssertEqual(hexString(encode(new)), "0014000101010101bb020b6578616d706c652e636f6d000568656c6c6f")
        XCTAssertEqual(hexString(encode(MuxFrame(sessionID: 1, status: .keep, data: a.buffer(string: "abc")))),
                       "00040001020100" + "03616263")
        XCTAssertEqual(hexString(encode(MuxFrame(sessionID: 1, status: .end))), "0004000103" + "00")
        let xudpNew = MuxFrame(sessionID: 0, status: .new, network: .udp, port: 53, address: .ipv4([8, 8, 8, 8]),
                               globalID: range(1, 8), data: a.buffer(string: "q"))
        XCTAssertEqual(hexString(encode(xudpNew)), "00140000010102003501080808080102030405060708000171")
        let xudpKeep = MuxFrame(sessionID: 0, status: .keep, network: .udp, port: 53, address: .ipv4([1, 1, 1, 1]),
                                data: a.buffer(string: "r"))
        XCTAssertEqual(hexString(encode(xudpKeep)), "000c00000201020035010101010100" + "0172")
    }

    func testParseRoundTripWholeAndDripFed() throws {
        let frames = [
            MuxFrame(sessionID: 1, status: .new, network: .tcp, port: 443, address: .domain("example.com"), data: a.buffer(string: "hello")),
            MuxFrame(sessionID: 1, status: .keep, data: a.buffer(bytes: SecureRandom.bytes(8192))),
            MuxFrame(sessionID: 0, status: .new, network: .udp, port: 53, address: .ipv4([8, 8, 8, 8]), globalID: range(1, 8),
                     data: a.buffer(string: "q")),
            MuxFrame(sessionID: 0, status: .keep, network: .udp, port: 53, address: .ipv6(range(0x10, 16)), data: a.buffer(string: "r")),
            MuxFrame(sessionID: 2, status: .keepAlive),
            MuxFrame(sessionID: 1, status: .end, option: .error),
        ]
        var wire: [UInt8] = []
        for f in frames { wire += encode(f) }
        for step in [wire.count, 1, 7, 100] {
            var got: [MuxFrame] = []
            var buf = a.buffer(capacity: 0)
            var i = 0
            while i < wire.count {
                buf.writeBytes(wire[i..<min(i + step, wire.count)])
                i += step
                while let f = try MuxFrame.parse(&buf) { got.append(f) }
            }
            XCTAssertEqual(got.count, frames.count, "step \(step)")
            for (g, f) in zip(got, frames) {
                XCTAssertEqual(g.sessionID, f.sessionID)
                XCTAssertEqual(g.status, f.status)
                XCTAssertEqual(g.address, f.address)
                XCTAssertEqual(g.port, f.port)
                XCTAssertEqual(g.globalID, f.globalID)
                XCTAssertEqual(g.data.map { $0.bytes }, f.data.map { $0.bytes })
            }
        }
    }

    func testHostileFrames() {
        var tooLong = a.buffer(bytes: [0x02, 0x01] + [UInt8](repeating: 0, count: 600))
        XCTAssertThrowsError(try MuxFrame.parse(&tooLong)) { XCTAssertEqual($0 as? MuxFrame.ParseError, .metadataTooLong(513)) }
        var badStatus = a.buffer(bytes: [0x00, 0x04, 0, 1, 9, 0])
        XCTAssertThrowsError(try MuxFrame.parse(&badStatus)) { XCTAssertEqual($0 as? MuxFrame.ParseError, .unknownStatus(9)) }
        var newWithoutAddress = a.buffer(bytes: [0x00, 0x04, 0, 1, 1, 0])
        XCTAssertThrowsError(try MuxFrame.parse(&newWithoutAddress))
        for _ in 0..<500 {
            var junk = a.buffer(bytes: SecureRandom.bytes(Int.random(in: 0..<700)))
            do { while try MuxFrame.parse(&junk) != nil {} } catch {}
        }
    }
}
