import Foundation
import FuzzSupport
@testable import Shared

// The JSON messages of the admin socket (AdminRequest from `vmessd ctl`, AdminResponse back) and the
// WorkerBootstrap a worker reads at start. Input: which message (mod 3), then the JSON bytes. What
// decodes must survive encode → decode unchanged (the supervisor encodes what a worker or ctl decodes).

func roundTrip<T: Equatable>(_ value: T, encode: (T) throws -> [UInt8], decode: ([UInt8]) throws -> T) {
    let encoded: [UInt8]
    do {
        encoded = try encode(value)
    } catch {
        preconditionFailure("decoded value does not encode: \(error)")
    }
    do {
        let again = try decode(encoded)
        precondition(again == value, "\(value) came back as \(again)")
    } catch {
        preconditionFailure("encoded value does not decode: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let which = input.byte() % 3
    let bytes = input.rest()
    switch which {
    case 0:
        if let r = try? AdminRequest.decode(bytes) { roundTrip(r, encode: { try $0.encodedLine() }, decode: AdminRequest.decode) }
    case 1:
        if let r = try? AdminResponse.decode(bytes) { roundTrip(r, encode: { try $0.encoded() }, decode: AdminResponse.decode) }
    default:
        if let b = try? WorkerBootstrap.decode(bytes) { roundTrip(b, encode: { try $0.encoded() }, decode: WorkerBootstrap.decode) }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        var seeds: [[UInt8]] = AdminRequest.Command.allCases.map { [0] + (try! AdminRequest(command: $0).encodedLine()) }
        seeds.append([1] + (try! AdminResponse(ok: false, message: "no such command").encoded()))
        seeds.append([1] + Array(#"{"ok":true,"message":"","status":{"pid":1,"generation":2,"phase":"running","uptimeSeconds":1.5,"config":"/etc/vmessd/config.json","workers":[],"slots":[],"listeners":[]}}"#.utf8))
        seeds.append([1] + Array(#"{"ok":true,"message":"","stats":{"accepted":1,"bytesUp":2,"bytesDown":3,"rejected":{"replay":1},"users":[{"user":"a","up":1,"down":2}]}}"#.utf8))
        let config = ConfigParser.demo(uuid: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", port: 10086)
        let bootstrap = WorkerBootstrap(workerID: 0, generation: 1, config: config, listeners: [.init(inbound: 0, fd: 3)], controlFD: 4)
        seeds.append([2] + (try! bootstrap.encoded()))
        return seeds
    }
    return 0
}
