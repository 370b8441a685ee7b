import FuzzSupport
@testable import Shared

// The legacy (MD5) request header (vmess-protocol.md §7) through ServerHandshake, for a table with one
// AEAD user and one legacy user (alterId 1, so the auth table holds the primary and one alter id).
// Input: mode, flags, clock offset (±127 s around the 120 s window), read-cut selector, payload.
//   mode 0: the payload is the whole wire;
//   mode 1: a valid auth value, then the payload encrypted as the command section (CFB under the
//           primary cmdKey), checksum fixed up when flag bit 1 is set; bytes past the section's own
//           length follow as body (LEGACY/none/zero bodies are parsed from there);
//   mode 2: a valid auth value, then the payload as is (decrypts to noise).
// Flag bit 0: disableInsecureEncryption; bit 2: authenticate with the alter id instead of the primary.
//
// The table remembers tainted auth values, and a table shared between runs would make a crash depend
// on the runs before it; building one costs ~500 HMACs, though. The clock never moves, so the taints
// are all a run can change: they are forgotten after each run instead of rebuilding the table.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte() % 3
    let flags = input.byte()
    let time = HandshakeDriver.now + Int64(Int8(bitPattern: input.byte()))
    let selector = input.byte()
    let bob = HandshakeDriver.bob
    let authID = flags & 4 != 0 ? bob.alterIDs(1)[0] : bob.bytes
    let wire: [UInt8]
    switch mode {
    case 0:
        wire = input.rest()
    case 1:
        var plain = input.rest()
        if flags & 2 != 0 { HandshakeDriver.fixChecksum(&plain) }
        let (command, body) = HandshakeDriver.splitCommand(plain)
        wire = HandshakeDriver.sealLegacy(command, primary: bob, authID: authID, time: time) + body
    default:
        wire = LegacyHeader.auth(id: authID, time: time) + input.rest()
    }
    HandshakeDriver.run(wire, pieces: selector, users: users, disableInsecure: flags & 1 != 0)
    users.forgetTaints()
    return 0
}

let users = try! UserTable(users: [(HandshakeDriver.alice, 0, 0, "alice"), (HandshakeDriver.bob, 1, 1, nil)])

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        var seeds: [[UInt8]] = []
        // Mode 0: the §14 legacy vector wire for bob.
        let vector = try! LegacyHeader.seal(HandshakeDriver.vectorRequest(security: .legacy), primary: HandshakeDriver.bob,
                                            authID: HandshakeDriver.bob.bytes, time: HandshakeDriver.now)
        seeds.append([0, 0, 0, 0] + vector)
        seeds.append([2, 0, 0, 1] + Array(vector[16...]))
        // Mode 1: plaintext sections for every security, command and option set the tests use, with
        // an end-of-stream body behind them.
        for security in Security.allCases {
            for (command, options) in [(RequestCommand.tcp, UInt8(0x0D)), (.udp, 0x05), (.mux, 0x01), (.tcp, 0x00), (.tcp, 0x01)] {
                let plain = HandshakeDriver.vectorRequest(security: security, options: options, command: command).encodeCommandSection()
                seeds.append([1, 2, 0, 0] + plain + [0, 0])
                seeds.append([1, 6, 0, 1] + plain)
            }
        }
        return seeds
    }
    return 0
}
