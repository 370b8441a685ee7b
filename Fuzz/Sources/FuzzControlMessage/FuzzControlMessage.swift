import FuzzSupport
@testable import Shared

// The supervisor↔worker control messages (fixed binary frames over the control socket). Input: one
// message. What decodes must encode within the size limit and decode again to the same message
// (a failure reason may come back cut at a character boundary: the encoder bounds it).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let message = try? ControlMessage.decode(bytes) else { return 0 }
    let encoded = message.encoded()
    precondition(encoded.count <= ControlMessage.maximumSize, "encoded \(encoded.count) bytes")
    let again: ControlMessage
    do {
        again = try ControlMessage.decode(encoded)
    } catch {
        preconditionFailure("\(message) does not decode after encoding: \(error)")
    }
    if case .failed(let reason) = message, case .failed(let cut) = again {
        precondition(reason.utf8.starts(with: cut.utf8), "reason changed beyond the cut")
    } else {
        precondition(again == message, "\(message) came back as \(again)")
    }
    _ = message.descriptorCount
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let messages: [ControlMessage] = [
            .attach(listeners: 3, sharedMemory: true), .heartbeat(sequence: 42), .drain(timeoutMilliseconds: 30_000),
            .stop, .accept, .ready(pid: 1234), .heartbeatReply(sequence: 42, connections: 7), .draining(connections: 2),
            .failed(reason: "cannot bind 0.0.0.0:443: Address already in use"), .failed(reason: "é"),
        ]
        return messages.map { $0.encoded() }
    }
    return 0
}
