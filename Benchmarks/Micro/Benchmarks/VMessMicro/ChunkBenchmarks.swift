import Benchmark
import NIOCore
import Shared

/// Body chunks, seal and open, per security and option set, at the read sizes the data plane sees:
/// 512 (the receive allocator's minimum: interactive traffic), 4096 (its initial size) and 65,536
/// (its maximum: bulk, several chunks per read). One operation = one read encoded or decoded.
func chunkBenchmarks() {
    let S = RequestOptions.chunkStream, M = RequestOptions.chunkMasking
    let P = RequestOptions.globalPadding, A = RequestOptions.authenticatedLength
    let cases: [(name: String, security: Security, options: RequestOptions)] = [
        ("aes-128-gcm", .aes128GCM, [S]),
        ("aes-128-gcm", .aes128GCM, [S, M, P]),
        ("aes-128-gcm", .aes128GCM, [S, M, P, A]),
        ("chacha20-poly1305", .chacha20Poly1305, [S]),
        ("chacha20-poly1305", .chacha20Poly1305, [S, M, P]),
        ("chacha20-poly1305", .chacha20Poly1305, [S, M, P, A]),
        ("none", .none, [S]),
        ("none", .none, [S, M]),
        ("aes-128-cfb", .legacy, [S, M]),
    ]
    for c in cases {
        for size in [512, 4096, 65_536] {
            let label = "chunk \(c.name) \(c.options.shortName) \(size)B"
            Benchmark("\(label) seal") { benchmark in
                let (encoder, _) = coders(c.security, c.options)
                let allocator = ByteBufferAllocator()
                let payload = allocator.buffer(repeating: 0x61, count: size)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    var p = payload
                    blackHole(try encoder.encode(&p, allocator: allocator))
                }
            }
            Benchmark("\(label) open") { benchmark in
                // A stateful pair: each open needs the next chunk its encoder made (nonce, mask).
                // Only the open is measured.
                let (encoder, decoder) = coders(c.security, c.options)
                let allocator = ByteBufferAllocator()
                let payload = allocator.buffer(repeating: 0x61, count: size)
                var sealed: [ByteBuffer] = []
                for _ in benchmark.scaledIterations {
                    var p = payload
                    sealed.append(try encoder.encode(&p, allocator: allocator))
                }
                benchmark.startMeasurement()
                for i in benchmark.scaledIterations {
                    try decoder.decode(&sealed[i]) { blackHole($0) }
                }
            }
        }
    }
}

/// A matching encoder (client → server) and decoder for one request's body.
private func coders(_ security: Security, _ options: RequestOptions) -> (BodyEncoder, BodyDecoder) {
    let parameters = try! BodyParameters.request(Fixtures.request(security, options))
    return (try! BodyEncoder(parameters), try! BodyDecoder(parameters))
}
