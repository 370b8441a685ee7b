// The resolver's answer cache: per server, question → addresses until the answer's TTL runs out.
// Bounded: at `capacity` entries the oldest insertion is evicted (FIFO), so a client asking for
// random names costs a fixed amount of memory, and each insertion O(1) amortised. Time is an input
// (`now`, nanoseconds on a monotonic clock) so the whole thing is pure and testable.

public struct DNSCache {
    public struct Key: Hashable, Sendable {
        /// Index of the server in `DNSConfig.servers` (answers differ per server: `expectIPs`, split DNS).
        public var server: Int
        public var question: DNSQuestion
        public init(server: Int, question: DNSQuestion) {
            self.server = server
            self.question = question
        }
    }

    public struct Entry: Equatable, Sendable {
        /// Empty for a cached negative answer (no such name, no data).
        public var addresses: [[UInt8]]
        /// NXDOMAIN for "no such name", else NOERROR (the only answers kept).
        public var rcode: DNSResponse.RCode
        public var expires: UInt64
    }

    public let capacity: Int
    /// Longest time an answer is kept whatever its TTL says (a day; the common resolver cap).
    public static let maximumTTL: UInt32 = 86_400

    private var entries: [Key: (entry: Entry, sequence: UInt64)] = [:]
    /// Insertion order; an element is stale when its sequence no longer matches the entry's.
    private var order: [(key: Key, sequence: UInt64)] = []
    private var orderHead = 0
    private var nextSequence: UInt64 = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var count: Int { entries.count }

    /// The live entry for `key`, or nil (an expired entry is removed).
    public mutating func lookup(_ key: Key, now: UInt64) -> Entry? {
        guard let found = entries[key] else { return nil }
        guard found.entry.expires > now else {
            entries[key] = nil
            return nil
        }
        return found.entry
    }

    /// Stores an answer for `ttl` seconds (capped at `maximumTTL`); a TTL of 0 stores nothing.
    public mutating func insert(_ key: Key, addresses: [[UInt8]], rcode: DNSResponse.RCode = .noError, ttl: UInt32, now: UInt64) {
        guard ttl > 0 else { return }
        let expires = now &+ UInt64(min(ttl, Self.maximumTTL)) * 1_000_000_000
        if entries[key] == nil {
            while entries.count >= capacity { evictOldest() }
        }
        nextSequence &+= 1
        entries[key] = (Entry(addresses: addresses, rcode: rcode, expires: expires), nextSequence)
        order.append((key, nextSequence))
        compactIfNeeded()
    }

    public mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
        orderHead = 0
    }

    private mutating func evictOldest() {
        while orderHead < order.count {
            let (key, sequence) = order[orderHead]
            orderHead += 1
            if entries[key]?.sequence == sequence {
                entries[key] = nil
                return
            }
        }
    }

    /// Re-inserting a key leaves its old position behind as a stale element; once stale and consumed
    /// elements outnumber the live ones, the order list is rebuilt so it stays within 2 × capacity.
    private mutating func compactIfNeeded() {
        guard order.count - orderHead > 2 * capacity || orderHead > capacity else { return }
        order = order[orderHead...].filter { entries[$0.key]?.sequence == $0.sequence }
        orderHead = 0
    }
}
