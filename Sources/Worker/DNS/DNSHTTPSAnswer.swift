import NIOCore
import Shared

/// The answer body of one DNS over HTTPS question, over either HTTP version: gathered up to the
/// largest DNS message (65,535 bytes; a longer body fails the question, it is never cut and
/// parsed), then parsed against the question. The question went out with id 0 (RFC 8484 §4.1).
struct DNSHTTPSAnswer {
    static let maximumMessage = 65_535

    private var body: ByteBuffer?

    /// False once the body is longer than a DNS message can be.
    mutating func append(_ part: inout ByteBuffer) -> Bool {
        guard (body?.readableBytes ?? 0) + part.readableBytes <= Self.maximumMessage else { return false }
        if body == nil { body = part } else { body!.writeBuffer(&part) }
        return true
    }

    /// The whole body as an answer to `question`.
    func reply(to question: DNSQuestion) -> Result<DNSReply, Error> {
        guard let message = body, message.readableBytes > 0 else { return .failure(DNSLookupError.malformed) }
        switch Result(catching: { try DNSResponseParser.parse(message, question: question) }) {
        case .success(.response(let response)) where response.id == 0: return .success(.response(response))
        case .success: return .failure(DNSLookupError.malformed)  // truncated (nothing to retry over), or another id
        case .failure(let error): return .failure(error)
        }
    }
}
