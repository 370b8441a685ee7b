/// How a byte stream arrives: every parser here is incremental, and the bugs that matter hide at
/// the boundaries between reads (a length field split in two, a chunk completed by the next read).
/// One selector byte picks the cut: 0 = one read, 1 = one byte per read, otherwise reads of
/// pseudo-random sizes 1…selector drawn from a generator seeded by the selector itself, so the same
/// input always replays the same cuts.
///
/// Every read costs a pass through the parser's entry (a whole NIO pipeline for the channel
/// targets), so long inputs get fewer, larger reads: one byte per read only up to `bytewiseLimit`
/// bytes, and never much more than `maximumReads` reads. Headers, where the cuts matter most, are
/// short enough to be cut anywhere.
public enum Pieces {
    /// For the pure parsers, where a read costs little.
    public static let parserReads = (bytewise: 256, maximum: 64)
    /// For the targets that drive a NIO pipeline, where one read costs tens of microseconds: the
    /// cuts inside our own handlers still vary, NIO's byte-to-message plumbing is not the subject.
    public static let pipelineReads = (bytewise: 32, maximum: 16)

    public static func split(_ payload: [UInt8], selector: UInt8,
                             limits: (bytewise: Int, maximum: Int) = parserReads) -> [ArraySlice<UInt8>] {
        let (bytewiseLimit, maximumReads) = limits
        guard !payload.isEmpty else { return [] }
        if selector == 0 { return [payload[...]] }
        var out: [ArraySlice<UInt8>] = []
        var state = UInt32(selector) &* 2_654_435_761
        var start = 0
        while start < payload.count {
            let size: Int
            if selector == 1 && payload.count <= bytewiseLimit {
                size = 1
            } else {
                state = state &* 1_103_515_245 &+ 12345
                let largest = max(2, Int(selector), payload.count / maximumReads)
                size = 1 + Int((state >> 8) % UInt32(largest))
            }
            let end = min(payload.count, start + size)
            out.append(payload[start..<end])
            start = end
        }
        return out
    }
}
