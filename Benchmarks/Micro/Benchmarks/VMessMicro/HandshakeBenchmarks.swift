import Benchmark
import NIOCore
import Shared

/// What a server does once per connection: match the AuthID, open and parse the request header,
/// seal the response header, set up the body coders. Replay filter and session history are the real
/// ones, sized (1,024 per generation) below the rings' 4,096 inputs so that nothing is a replay.
func handshakeBenchmarks() {
    let ringSize = 4096
    let memory = 1024

    // AuthID match: only the 16 AuthID bytes are fed, so the handshake stops after the match (and
    // the replay filter insert) and asks for more. The client is the last user and unknown by address.
    for count in [1, 1000, 10_000] {
        let users = Fixtures.users(count)
        let authIDs = Ring((0..<ringSize).map { _ in
            try! AuthID.create(cmdKey: Fixtures.client.cmdKey, time: Fixtures.now)
        })
        let replay = GenerationalReplayFilter(capacity: memory)
        let sessions = SessionHistory(capacity: memory)
        Benchmark("authid match \(count) users") { benchmark in
            for _ in benchmark.scaledIterations {
                var buffer = ByteBuffer(bytes: authIDs.take())
                var h = ServerHandshake(users: users, replay: replay, sessions: sessions, disableInsecure: false)
                guard case .needMore = h.feed(&buffer, now: Fixtures.now) else { fatalError("AuthID not matched") }
            }
        }
    }

    // Header open + parse without the state machine: the two AEAD opens (each two KDFs of three
    // labels) and the command section parse.
    do {
        let sealed = Fixtures.sealedHeader(Fixtures.request(.aes128GCM, [.chunkStream, .chunkMasking, .globalPadding]))
        let eAuthID = Array(sealed[0..<16]), encLen = Array(sealed[16..<34])
        let nonce = Array(sealed[34..<42]), command = Array(sealed[42...])
        Benchmark("header open + parse") { benchmark in
            for _ in benchmark.scaledIterations {
                let cmdKey = Fixtures.client.cmdKey
                guard AEADHeader.openLength(cmdKey: cmdKey, eAuthID: eAuthID, connectionNonce: nonce, sealed: encLen) != nil,
                      let plain = AEADHeader.openCommand(cmdKey: cmdKey, eAuthID: eAuthID, connectionNonce: nonce, sealed: command)
                else { fatalError("header did not open") }
                blackHole(try RequestHeader.parse(plain[...]))
            }
        }
    }

    // The whole server side of a connection's set-up, as VMessServerHandler runs it.
    for count in [1, 10_000] {
        let users = Fixtures.users(count)
        let headers = Ring((0..<ringSize).map { _ in
            Fixtures.sealedHeader(Fixtures.request(.aes128GCM, [.chunkStream, .chunkMasking, .globalPadding]))
        })
        let replay = GenerationalReplayFilter(capacity: memory)
        let sessions = SessionHistory(capacity: memory)
        Benchmark("server handshake \(count) users") { benchmark in
            for _ in benchmark.scaledIterations {
                var buffer = ByteBuffer(bytes: headers.take())
                var h = ServerHandshake(users: users, replay: replay, sessions: sessions, disableInsecure: false)
                guard case .accepted(let a) = h.feed(&buffer, now: Fixtures.now) else { fatalError("not accepted") }
                blackHole(a)
            }
        }
        Benchmark("connection set-up \(count) users") { benchmark in
            for _ in benchmark.scaledIterations {
                var buffer = ByteBuffer(bytes: headers.take())
                var h = ServerHandshake(users: users, replay: replay, sessions: sessions, disableInsecure: false)
                guard case .accepted(let a) = h.feed(&buffer, now: Fixtures.now) else { fatalError("not accepted") }
                let keys = ResponseHeader.bodyKeys(request: a.header, legacy: false)
                blackHole(try ResponseHeader.sealAEAD(ResponseHeader.plain(responseAuth: a.header.responseAuth), keys: keys))
                blackHole(try BodyDecoder(.request(a.header)))
                blackHole(try BodyEncoder(.response(a.header, keys: keys)))
            }
        }
    }

    do {
        let request = Fixtures.request(.aes128GCM, [.chunkStream, .chunkMasking, .globalPadding])
        Benchmark("response header seal") { benchmark in
            for _ in benchmark.scaledIterations {
                let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
                blackHole(try ResponseHeader.sealAEAD(ResponseHeader.plain(responseAuth: request.responseAuth), keys: keys))
            }
        }
        for (name, security) in [("aes-128-gcm", Security.aes128GCM), ("chacha20-poly1305", .chacha20Poly1305)] {
            let request = Fixtures.request(security, [.chunkStream, .chunkMasking, .globalPadding])
            let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
            Benchmark("body coders set-up \(name) SMP") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(try BodyDecoder(.request(request)))
                    blackHole(try BodyEncoder(.response(request, keys: keys)))
                }
            }
        }
    }
}
