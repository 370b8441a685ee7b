/// Round-trip estimate and retransmission timeout of one mKCP session, as V2Ray computes them
/// (v2fly kcp/connection.go RoundTripInfo, after RFC 6298): the RTO is (srtt + 4·rttvar, or srtt +
/// rttvar when the variation is small against the TTI floor) × 5/4, capped at 10 s before the ×5/4,
/// and (unlike V2Ray) never below the TTI.
struct KCPRoundTrip {
    private(set) var rto: UInt32 = 100
    private(set) var srtt: UInt32 = 0
    private var variation: UInt32 = 0
    private let minRTT: UInt32
    private var updated: UInt32 = 0

    init(minRTT: UInt32) { self.minRTT = minRTT }

    /// The peer's own RTO from its pings, taken at most every 3 s and only while no local sample is
    /// newer. Clamped: the peer controls it, and a wrapped timeout would stall or flood the session.
    mutating func updatePeerRTO(_ peer: UInt32, now: UInt32) {
        guard now &- updated >= 3000 else { return }
        updated = now
        rto = min(peer, 12_500)
    }

    mutating func update(rtt: UInt32, now: UInt32) {
        guard rtt <= 0x7FFF_FFFF else { return }
        if srtt == 0 {
            srtt = rtt
            variation = rtt / 2
        } else {
            let delta = srtt > rtt ? srtt - rtt : rtt - srtt
            variation = UInt32((3 * UInt64(variation) + UInt64(delta)) / 4)
            srtt = UInt32((7 * UInt64(srtt) + UInt64(rtt)) / 8)
            if srtt < minRTT { srtt = minRTT }
        }
        var next: UInt64 = UInt64(minRTT) < 4 * UInt64(variation)
            ? UInt64(srtt) + 4 * UInt64(variation) : UInt64(srtt) + UInt64(variation)
        if next > 10_000 { next = 10_000 }
        // Not below the TTI: V2Ray lets a first sample of 0 ms (loopback, a millisecond clock) make
        // the RTO 0, which resends every unacknowledged segment at every flush.
        rto = max(UInt32(next * 5 / 4), minRTT)
        updated = now
    }
}
