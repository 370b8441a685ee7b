import Benchmark
import Shared

/// The VMess KDF (§3): 2^n HMAC-SHA-256 evaluations for n labels. One label: the AuthID key and
/// the authenticated-length key; three labels (label, EAuthID, nonce): each of the four header keys
/// and nonces a server derives per connection.
func kdfBenchmarks() {
    let secret = SecureRandom.bytes(16)
    let eAuthID = SecureRandom.bytes(16), nonce = SecureRandom.bytes(8)
    Benchmark("kdf 1 label") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(KDF.derive(secret, KDFLabel.authLength))
        }
    }
    Benchmark("kdf 3 labels") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(KDF.derive(secret, KDFLabel.headerPayloadKey, eAuthID, nonce))
        }
    }
}
