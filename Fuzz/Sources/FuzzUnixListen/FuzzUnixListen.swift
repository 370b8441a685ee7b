import FuzzSupport
@testable import Shared

// `listen` text read as a Unix socket (UnixListenAddress: "/path", "/path,0666", "@name", "@@name"):
// any text parses or is refused with a reason, never a trap. What parses fits sun_path, matches its
// own sun_path bytes (as getsockname reports them), carries a mode only for a path and only the
// permission bits, and reads back from its description to the same address (less the mode).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let text = String(decoding: input.bytes, as: UTF8.self)
    guard UnixListenAddress.isUnixSocket(text), let address = try? UnixListenAddress(parsing: text) else { return 0 }
    let sunPath = address.sunPath
    precondition(!sunPath.isEmpty && sunPath.count <= UnixListenAddress.sunPathSize, "sun_path of \(sunPath.count) bytes")
    precondition(address.matches(sunPath: sunPath), "an address must match its own sun_path")
    if address.kind == .path {
        // Linux may report a path without its NUL.
        precondition(address.matches(sunPath: Array(sunPath.dropLast())), "a path must match without its NUL")
    }
    precondition(address.mode.map { address.kind == .path && $0 <= 0o777 } ?? true, "mode \(String(describing: address.mode))")
    var again = try! UnixListenAddress(parsing: address.description)
    again.mode = address.mode
    precondition(again == address, "\(address) read back as \(again)")
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        ["/run/vmessd/ws.sock", "/run/vmessd/ws.sock,0666", "/a,b,c", "/s,", "@vmessd", "@@vmessd", "@a,0666", "@", "@@",
         "/" + String(repeating: "x", count: 106)].map { Array($0.utf8) }
    }
    return 0
}
