import NIOCore

// V2Ray's mKCP segments (v2fly transport/internet/kcp/segment.go), all integers big-endian. Every
// segment opens with the same four bytes:
//
//   conv:2 | cmd:1 | option:1 | ...
//
//   data (cmd 1):   timestamp:4 | number:4 | sendingNext:4 | length:2 | payload[length]
//   ack  (cmd 0):   receivingWindow:4 | receivingNext:4 | timestamp:4 | count:1 | number:4 × count
//   other (2 = terminate, 3 = ping, anything else): sendingNext:4 | receivingNext:4 | peerRTO:4
//
// option bit 0 (`close`) says the sender has closed its side. A datagram may carry several segments
// back to back; V2Ray itself sends one per datagram. The parser mirrors V2Ray's acceptance exactly
// (including its quirk of wanting 15 bytes after a data segment's common head, one more than the
// fixed fields) and never copies: payloads and ack lists are slices of the datagram's buffer.

public enum KCPCommand: UInt8, Sendable {
    case ack = 0, data = 1, terminate = 2, ping = 3
}

public struct KCPDataSegment {
    public var conv: UInt16
    public var option: UInt8
    public var timestamp: UInt32
    public var number: UInt32
    public var sendingNext: UInt32
    public var payload: ByteBuffer
}

public struct KCPAckSegment {
    public var conv: UInt16
    public var option: UInt8
    public var receivingWindow: UInt32
    public var receivingNext: UInt32
    public var timestamp: UInt32
    /// `count` big-endian numbers (count ≤ 255 by the wire format).
    public var numbers: ByteBuffer
    public var count: Int { numbers.readableBytes / 4 }
    public func number(at i: Int) -> UInt32 {
        numbers.getInteger(at: numbers.readerIndex + 4 * i, as: UInt32.self)!
    }
}

public struct KCPCommandSegment {
    public var conv: UInt16
    /// Raw, since V2Ray accepts any value other than ack and data as a command-only segment.
    public var command: UInt8
    public var option: UInt8
    public var sendingNext: UInt32
    public var receivingNext: UInt32
    public var peerRTO: UInt32
}

public enum KCPSegment {
    case data(KCPDataSegment)
    case ack(KCPAckSegment)
    case command(KCPCommandSegment)

    public static let dataOverhead = 18
    public static let optionClose: UInt8 = 1
    /// V2Ray's ack segments carry at most this many numbers.
    public static let ackNumberLimit = 128

    public var conv: UInt16 {
        switch self {
        case .data(let s): s.conv
        case .ack(let s): s.conv
        case .command(let s): s.conv
        }
    }

    public var option: UInt8 {
        switch self {
        case .data(let s): s.option
        case .ack(let s): s.option
        case .command(let s): s.option
        }
    }

    /// Reads one segment from the front of `buffer`; nil (buffer unchanged) when what is left is not a
    /// whole segment — V2Ray then ignores the rest of the datagram.
    public static func read(from buffer: inout ByteBuffer) -> KCPSegment? {
        var b = buffer
        guard let conv = b.readInteger(as: UInt16.self), let cmd = b.readInteger(as: UInt8.self),
              let opt = b.readInteger(as: UInt8.self) else { return nil }
        let segment: KCPSegment
        switch cmd {
        case KCPCommand.data.rawValue:
            guard b.readableBytes >= 15,
                  let ts = b.readInteger(as: UInt32.self), let number = b.readInteger(as: UInt32.self),
                  let next = b.readInteger(as: UInt32.self), let length = b.readInteger(as: UInt16.self),
                  let payload = b.readSlice(length: Int(length)) else { return nil }
            segment = .data(KCPDataSegment(conv: conv, option: opt, timestamp: ts, number: number,
                                           sendingNext: next, payload: payload))
        case KCPCommand.ack.rawValue:
            guard let window = b.readInteger(as: UInt32.self), let next = b.readInteger(as: UInt32.self),
                  let ts = b.readInteger(as: UInt32.self), let count = b.readInteger(as: UInt8.self),
                  let numbers = b.readSlice(length: Int(count) * 4) else { return nil }
            segment = .ack(KCPAckSegment(conv: conv, option: opt, receivingWindow: window, receivingNext: next,
                                         timestamp: ts, numbers: numbers))
        default:
            guard let sn = b.readInteger(as: UInt32.self), let rn = b.readInteger(as: UInt32.self),
                  let rto = b.readInteger(as: UInt32.self) else { return nil }
            segment = .command(KCPCommandSegment(conv: conv, command: cmd, option: opt, sendingNext: sn,
                                                 receivingNext: rn, peerRTO: rto))
        }
        buffer = b
        return segment
    }

    public var byteSize: Int {
        switch self {
        case .data(let s): Self.dataOverhead + s.payload.readableBytes
        case .ack(let s): 17 + s.numbers.readableBytes
        case .command: 16
        }
    }

    public func write(to out: inout ByteBuffer) {
        switch self {
        case .data(let s):
            out.writeMultipleIntegers(s.conv, KCPCommand.data.rawValue, s.option, s.timestamp, s.number, s.sendingNext,
                                      UInt16(truncatingIfNeeded: s.payload.readableBytes))
            out.writeImmutableBuffer(s.payload)
        case .ack(let s):
            out.writeMultipleIntegers(s.conv, KCPCommand.ack.rawValue, s.option, s.receivingWindow, s.receivingNext,
                                      s.timestamp, UInt8(truncatingIfNeeded: s.count))
            out.writeImmutableBuffer(s.numbers)
        case .command(let s):
            out.writeMultipleIntegers(s.conv, s.command, s.option, s.sendingNext, s.receivingNext, s.peerRTO)
        }
    }
}
