import NIOCore
@testable import Shared

/// Frame streams for the Mux.Cool seeds: the §14 mux vectors and the frame kinds the tests use.
public enum MuxSeeds {
    public static func frames() -> [[UInt8]] {
        let a = ByteBufferAllocator()
        let sets: [[MuxFrame]] = [
            [MuxFrame(sessionID: 1, status: .new, network: .tcp, port: 443, address: .domain("example.com"), data: a.buffer(string: "hello")),
             MuxFrame(sessionID: 1, status: .keep, data: a.buffer(string: "abc")),
             MuxFrame(sessionID: 1, status: .end)],
            [MuxFrame(sessionID: 0, status: .new, network: .udp, port: 53, address: .ipv4([8, 8, 8, 8]),
                      globalID: [1, 2, 3, 4, 5, 6, 7, 8], data: a.buffer(string: "q")),
             MuxFrame(sessionID: 0, status: .keep, network: .udp, port: 53, address: .ipv4([1, 1, 1, 1]), data: a.buffer(string: "r")),
             MuxFrame(sessionID: 0, status: .keep, network: .udp, port: 53, address: .ipv6((0..<16).map { 0x10 + $0 }),
                      data: a.buffer(string: "s"))],
            [MuxFrame(sessionID: 2, status: .new, network: .udp, port: 53, address: .ipv4([8, 8, 8, 8])),
             MuxFrame(sessionID: 2, status: .keep, data: a.buffer(string: "dns")),
             MuxFrame(sessionID: 3, status: .keepAlive),
             MuxFrame(sessionID: 2, status: .end, option: .error)],
            [MuxFrame(sessionID: 1, status: .keep, data: a.buffer(string: "for client session 1")),
             MuxFrame(sessionID: 2, status: .keep, data: a.buffer(string: "two")),
             MuxFrame(sessionID: 9, status: .keep, data: a.buffer(string: "unknown")),
             MuxFrame(sessionID: 1, status: .end)],
        ]
        return sets.map { frames in
            var out = ByteBuffer()
            for f in frames { f.write(into: &out) }
            return Array(out.readableBytesView)
        }
    }

    /// Every complete frame in what a mux side wrote; traps if the bytes are not a frame stream,
    /// because a side must never write what its peer cannot parse.
    public static func checkFrames(_ written: inout ByteBuffer) {
        do {
            while try MuxFrame.parse(&written) != nil {}
        } catch {
            preconditionFailure("wrote an invalid frame: \(error)")
        }
    }
}
