import FuzzSupport
@testable import Shared

// The switch-account command a server's response header carries (dynamic port, vmess-protocol.md
// §8.5), as vmessd's vmess outbound reads it: any bytes decode to a command or to nothing, and a
// command that decodes encodes back to exactly the same bytes.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    if let command = SwitchAccountCommand.decode(input.bytes) {
        precondition(command.encode() == input.bytes, "decode then encode changed the bytes")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        let id = UserID(bytes: Array(0..<16))
        return [
            SwitchAccountCommand(port: 10_086, id: id, alterIds: 0, level: 0, validMinutes: 255).encode(),
            SwitchAccountCommand(host: "detour.example.com", port: 443, id: id, alterIds: 32, level: 1, validMinutes: 5).encode(),
        ]
    }
    return 0
}
