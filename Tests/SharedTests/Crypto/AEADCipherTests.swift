import COpenSSL
import XCTest
@testable import Shared

/// The per-chunk AEAD ciphers run on libcrypto's direct path (DirectCiphers.c); these tests hold
/// it to the provider's cipher byte for byte, and to its refusals.
final class AEADCipherTests: XCTestCase {
    static let algorithms: [(AEADCipher.Algorithm, String)] = [(.aes128GCM, "AES-128-GCM"), (.chacha20Poly1305, "ChaCha20-Poly1305")]

    func provided(_ name: String) throws -> OpaquePointer {
        let cipher = try XCTUnwrap(EVP_CIPHER_fetch(nil, name, nil))
        addTeardownBlock { EVP_CIPHER_free(cipher) }
        return cipher
    }

    func bytes(_ n: Int, _ seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ Int(seed)) } }

    /// This machine's libcrypto (Debian 12's 3.0) has the direct path; losing it would silently
    /// cost ~150 ns a chunk.
    func testAEADCiphersRunOnTheDirectPath() {
        XCTAssertTrue(Ciphers.aeadIsDirect)
    }

    /// Sizes around the block and chunk boundaries, several nonces on one context (as a stream's
    /// chunks), with and without additional data, and after the context was released and re-keyed.
    func testDirectSealsAndOpensAsTheProvider() throws {
        for (algorithm, name) in Self.algorithms {
            let key = bytes(algorithm.keySize, 3)
            let reference = try AEADCipher(algorithm, cipher: provided(name), key: key, encrypting: true)
            let referenceOpener = try AEADCipher(algorithm, cipher: provided(name), key: key, encrypting: false)
            let sealer = try AEADCipher(algorithm, key: key, encrypting: true)
            let opener = try AEADCipher(algorithm, key: key, encrypting: false)
            var count: UInt16 = 0
            for size in [0, 1, 15, 16, 17, 63, 64, 65, 2048, 16_384 - 34] {
                for aad in [[], bytes(16, 9)] {
                    count &+= 1
                    let nonce = [UInt8(count >> 8), UInt8(count & 0xff)] + bytes(10, 5)
                    let plaintext = bytes(size, UInt8(truncatingIfNeeded: size))
                    let sealed = try sealer.seal(nonce: nonce, plaintext: plaintext, aad: aad)
                    XCTAssertEqual(sealed, try reference.seal(nonce: nonce, plaintext: plaintext, aad: aad), "\(name) \(size)")
                    XCTAssertEqual(opener.open(nonce: nonce, sealed: sealed, aad: aad), plaintext, "\(name) \(size)")
                    XCTAssertEqual(referenceOpener.open(nonce: nonce, sealed: sealed, aad: aad), plaintext)
                    if count % 5 == 0 {
                        sealer.releaseContext()
                        opener.releaseContext()
                    }
                }
            }
        }
    }

    /// A flipped bit anywhere (ciphertext, tag, additional data, nonce) is refused, and the context
    /// opens the next genuine chunk afterwards.
    func testDirectRefusesForgeriesAndRecovers() throws {
        for (algorithm, name) in Self.algorithms {
            let key = bytes(algorithm.keySize, 7)
            let sealer = try AEADCipher(algorithm, key: key, encrypting: true)
            let opener = try AEADCipher(algorithm, key: key, encrypting: false)
            let nonce = bytes(12, 1), aad = bytes(8, 2), plaintext = bytes(40, 4)
            let sealed = try sealer.seal(nonce: nonce, plaintext: plaintext, aad: aad)
            for i in [0, 20, 39, 40, 55] {
                var forged = sealed
                forged[i] ^= 0x01
                XCTAssertNil(opener.open(nonce: nonce, sealed: forged, aad: aad), "\(name) byte \(i)")
            }
            var otherAAD = aad
            otherAAD[0] ^= 0x80
            XCTAssertNil(opener.open(nonce: nonce, sealed: sealed, aad: otherAAD))
            XCTAssertNil(opener.open(nonce: bytes(12, 2), sealed: sealed, aad: aad))
            XCTAssertNil(opener.open(nonce: nonce, sealed: Array(sealed.prefix(15)), aad: aad))
            XCTAssertEqual(opener.open(nonce: nonce, sealed: sealed, aad: aad), plaintext, name)
        }
    }

    /// NIST's GCM test case 2 (SP 800-38D validation, AES-128, zero key and IV): a fixed answer that
    /// does not come from the library under test.
    func testAES128GCMKnownAnswer() throws {
        let sealer = try AEADCipher(.aes128GCM, key: [UInt8](repeating: 0, count: 16), encrypting: true)
        let sealed = try sealer.seal(nonce: [UInt8](repeating: 0, count: 12), plaintext: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(hexString(sealed), "0388dace60b6a392f328c2b971b2fe78" + "ab6e47d42cec13bdf53a67b21257bddf")
    }

    /// The start-up check itself: the provider's cipher agrees with itself, and a cipher of the
    /// other algorithm (a stand-in for a direct path that computes something else) does not.
    func testAgreementCheckTellsCiphersApart() throws {
        let gcm = try provided("AES-128-GCM")
        XCTAssertTrue(AEADCipher.agrees(gcm, with: gcm, .aes128GCM))
        XCTAssertTrue(AEADCipher.agrees(Ciphers.aes128GCM, with: gcm, .aes128GCM))
        // AES-256-GCM keyed from the same 32 inline key bytes: same shape, other results.
        XCTAssertFalse(AEADCipher.agrees(try provided("AES-256-GCM"), with: gcm, .aes128GCM))
    }
}
