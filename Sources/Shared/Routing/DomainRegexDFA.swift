// A lazily built DFA over a DomainRegex program: the NFA state sets the Pike VM would track are
// interned as DFA states the first time an input reaches them, with one transition per (state, byte)
// filled on first use. A decision then costs one table load per domain byte instead of a walk over
// every live NFA state (measured: 60 µs → well under a microsecond for a geolocation-!cn rule's 31
// regexes on an unmatched name).
//
// Bounded: at most `maximumStates` states (default 2,048) (1 KiB of transitions each); when full the cache is dropped
// and rebuilt from the current state, so a hostile input can only make the cost per byte that of
// building one state (linear in the program), never make memory grow. The cache is shared by every
// caller of the router, so it is guarded by a mutex (uncontended in a single-event-loop worker).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

final class DomainRegexDFA: @unchecked Sendable {
    static let defaultMaximumStates = 2_048

    private let maximumStates: Int

    private let program: [DomainRegex.Instruction]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// NFA program counters of each DFA state (sorted, deduplicated).
    private var sets: [[Int]] = []
    private var ids: [[Int]: Int32] = [:]
    /// `transitions[state << 8 | byte]`: next state, or -1 when not built yet.
    private var transitions: [Int32] = []
    /// Whether the state's closure reached `match` (a match ended at or before this position).
    private var accepting: [Bool] = []
    /// Whether a match completes at the end of the text (pending `$`/`\z`): -1 not known yet.
    private var acceptsAtEnd: [Int8] = []
    private var start: Int32 = 0

    init(_ regex: DomainRegex, maximumStates: Int = DomainRegexDFA.defaultMaximumStates) {
        program = regex.program
        self.maximumStates = max(2, maximumStates)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        reset()
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func matches(_ input: [UInt8]) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if input.isEmpty {
            return closure([0], atStart: true, atEnd: true).accepting
        }
        var state = start
        if accepting[Int(state)] { return true }
        for byte in input {
            var next = transitions[Int(state) << 8 | Int(byte)]
            if next < 0 { next = build(from: state, byte) }
            state = next
            if accepting[Int(state)] { return true }
        }
        if acceptsAtEnd[Int(state)] < 0 {
            let pending = sets[Int(state)].filter { if case .textEnd = program[$0] { true } else { false } }
            acceptsAtEnd[Int(state)] = closure(pending.map { $0 + 1 }, atStart: false, atEnd: true).accepting ? 1 : 0
        }
        return acceptsAtEnd[Int(state)] == 1
    }

    // MARK: construction

    private func reset() {
        sets.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        transitions.removeAll(keepingCapacity: true)
        accepting.removeAll(keepingCapacity: true)
        acceptsAtEnd.removeAll(keepingCapacity: true)
        let initial = closure([0], atStart: true, atEnd: false)
        start = intern(initial.set, accepting: initial.accepting)
    }

    private func build(from state: Int32, _ byte: UInt8) -> Int32 {
        // Unanchored search: a match may also start after this byte, so the program's start is a seed.
        var seeds: [Int] = []
        for pc in sets[Int(state)] {
            if case .consume(let set) = program[pc], set.contains(byte) { seeds.append(pc + 1) }
        }
        seeds.append(0)
        let next = closure(seeds, atStart: false, atEnd: false)
        var from = state
        if ids[next.set] == nil && sets.count >= maximumStates {
            // Full: start over; only the state being left is needed again.
            let current = sets[Int(state)]
            let currentAccepting = accepting[Int(state)]
            reset()
            from = ids[current] ?? intern(current, accepting: currentAccepting)
        }
        let id = ids[next.set] ?? intern(next.set, accepting: next.accepting)
        transitions[Int(from) << 8 | Int(byte)] = id
        return id
    }

    private func intern(_ set: [Int], accepting isAccepting: Bool) -> Int32 {
        let id = Int32(sets.count)
        sets.append(set)
        ids[set] = id
        transitions.append(contentsOf: repeatElement(-1, count: 256))
        accepting.append(isAccepting)
        acceptsAtEnd.append(-1)
        return id
    }

    /// The states reachable from `seeds` without consuming a byte: consuming instructions, plus
    /// `textEnd` instructions that cannot be passed yet (kept so the end-of-text check can resume).
    private func closure(_ seeds: [Int], atStart: Bool, atEnd: Bool) -> (set: [Int], accepting: Bool) {
        var seen = [Bool](repeating: false, count: program.count)
        var stack = seeds.reversed() as [Int]
        var set: [Int] = []
        var isAccepting = false
        while let pc = stack.popLast() {
            guard !seen[pc] else { continue }
            seen[pc] = true
            switch program[pc] {
            case .consume: set.append(pc)
            case .split(let a, let b): stack.append(b); stack.append(a)
            case .jump(let target): stack.append(target)
            case .textStart: if atStart { stack.append(pc + 1) }
            case .textEnd: if atEnd { stack.append(pc + 1) } else { set.append(pc) }
            case .match: isAccepting = true
            }
        }
        // Once a match is found the rest does not matter: one canonical accepting state ([-1], distinct
        // from the empty non-accepting set a failed `^` leaves).
        return isAccepting ? ([-1], true) : (set.sorted(), false)
    }
}
