import FuzzSupport
@testable import Shared

// The AEAD request header (vmess-protocol.md §5) through ServerHandshake, for a table of two AEAD
// users. Input: mode, flags, clock offset, read-cut selector, then the payload.
//   mode 0: the payload is the whole wire (what a scanner sends: AuthID matching, drain decisions);
//   mode 1: a valid AuthID for bob, then the payload (length field, nonce, sealed command);
//   mode 2: a correctly sealed header whose command *plaintext* is the payload (checksum fixed up
//           when flag bit 1 is set), so the command parser and the body set-up see fuzzed fields;
//           payload bytes past the section's own length follow the header as body;
//   mode 3: like 2, but the sealed length field declares a fuzzed length.
// Flag bit 0: disableInsecureEncryption. The clock offset moves the AuthID time by ±254 s so the
// 120 s window is probed on both sides.

let users = try! UserTable(users: [(HandshakeDriver.alice, 0, 0, "alice"), (HandshakeDriver.bob, 0, 1, nil)])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte() % 4
    let flags = input.byte()
    let time = HandshakeDriver.now + Int64(Int8(bitPattern: input.byte())) * 2
    let selector = input.byte()
    let wire: [UInt8]
    switch mode {
    case 0:
        wire = input.rest()
    case 1:
        wire = HandshakeDriver.authID(cmdKey: HandshakeDriver.bob.cmdKey, time: time) + input.rest()
    default:
        let declared = mode == 3 ? Int(input.uint16()) : nil
        var plain = input.rest()
        if flags & 2 != 0 { HandshakeDriver.fixChecksum(&plain) }
        // Mode 2: what follows the command section's own length is body; mode 3 seals it all.
        let (command, body) = mode == 2 ? HandshakeDriver.splitCommand(plain) : (plain, [])
        wire = HandshakeDriver.sealAEAD(command, cmdKey: HandshakeDriver.bob.cmdKey, time: time, declaredLength: declared) + body
    }
    HandshakeDriver.run(wire, pieces: selector, users: users, disableInsecure: flags & 1 != 0)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    SeedWriter.writeIfRequested {
        var seeds: [[UInt8]] = []
        // Mode 0: the §14 vector wire as a scanner would replay it, and random-looking garbage.
        let vector = try! AEADHeader.seal(HandshakeDriver.vectorRequest(), cmdKey: HandshakeDriver.alice.cmdKey,
                                          time: HandshakeDriver.now, authRandom: [1, 2, 3, 4],
                                          connectionNonce: (0..<8).map { 0xA0 + $0 })
        seeds.append([0, 0, 0, 0] + vector + Array("GET / HTTP/1.1\r\n\r\n".utf8))
        seeds.append([0, 0, 0, 1] + vector)
        // Mode 1: the rest of the vector behind bob's AuthID (fails the tag: exercises that path).
        seeds.append([1, 0, 0, 0] + Array(vector[16...]))
        // Mode 2/3: plaintext command sections for every security, command and option set the tests use.
        for security in Security.allCases {
            for (command, options) in [(RequestCommand.tcp, UInt8(0x0D)), (.udp, 0x05), (.mux, 0x01), (.tcp, 0x1D), (.tcp, 0x00)] {
                let plain = HandshakeDriver.vectorRequest(security: security, options: options, command: command).encodeCommandSection()
                seeds.append([2, 2, 0, 0] + plain + [0, 0])
            }
        }
        let plain = HandshakeDriver.vectorRequest().encodeCommandSection()
        seeds.append([3, 2, 0, 7, 0, UInt8(plain.count)] + plain)
        seeds.append([2, 3, 0, 0] + HandshakeDriver.vectorRequest(security: .none).encodeCommandSection())
        return seeds
    }
    return 0
}
