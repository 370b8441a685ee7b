// `regexp:` domain patterns, matched in time linear in the domain's length whatever the pattern.
//
// The patterns come from the operator's config and geosite files, the domains from clients. A
// backtracking engine (NSRegularExpression, Swift Regex) can take exponential time on patterns like
// `(a+)+$` against a crafted domain, so patterns are compiled to a Thompson NFA and run as a state set
// (Pike's VM without captures): at most `instructions` states per input byte, no recursion, no stack
// that grows with the input. All patterns of one rule are compiled into one program (an alternation),
// so a rule with many regexes costs one pass over the domain.
//
// Supported (Go RE2 syntax, the subset geodata files use): literals, `.`, `[...]`/`[^...]` with ranges,
// `\d \D \w \W \s \S`, escaped punctuation, `\A \z`, `^ $` (start/end of text), groups `(...)` and
// `(?:...)`, `|`, `* + ?` and `{n} {n,} {n,m}` (a trailing `?` for laziness is accepted: it cannot
// change whether a pattern matches). Anything else (flags, `\b`, backreferences do not exist in RE2)
// is a config error naming the pattern. Matching is over UTF-8 bytes: `.` and classes match one byte,
// which is exact for the ASCII that domain names are.

struct DomainRegex {
    struct SyntaxError: Error, Equatable {
        var reason: String
    }

    enum Instruction {
        case consume(ByteSet)
        case split(Int, Int)
        case jump(Int)
        case textStart
        case textEnd
        case match
    }

    /// Compiled program size limit per pattern: bounds memory and the per-byte cost of hostile
    /// repetition counts like `(a{1000}){1000}`.
    static let maximumInstructions = 20_000
    static let maximumRepeat = 1_000

    let program: [Instruction]

    /// One program matching when any of `patterns` matches.
    init(_ patterns: [String]) throws {
        var nodes: [Node] = []
        for pattern in patterns {
            var parser = Parser(Array(pattern.utf8))
            nodes.append(try parser.parse())
        }
        var compiler = Compiler(limit: Self.maximumInstructions * max(1, patterns.count))
        try compiler.emit(.alternation(nodes))
        compiler.program.append(.match)
        program = compiler.program
    }

    /// Checks a single pattern (config validation).
    static func validate(_ pattern: String) throws {
        _ = try DomainRegex([pattern])
    }

    /// Whether some substring of `input` matches (Go's MatchString semantics).
    func matches(_ input: some Collection<UInt8>) -> Bool {
        let count = program.count
        var current: [Int] = []
        var next: [Int] = []
        current.reserveCapacity(count)
        next.reserveCapacity(count)
        var marks = [Int](repeating: -1, count: count)
        var stack: [Int] = []
        let length = input.count

        // Adds `pc` and everything reachable from it without consuming a byte, at text position `pos`;
        // `mark` (a distinct number per list fill) keeps each state once per list.
        func add(_ pc: Int, _ pos: Int, _ mark: Int, into list: inout [Int]) -> Bool {
            stack.append(pc)
            while let pc = stack.popLast() {
                guard marks[pc] != mark else { continue }
                marks[pc] = mark
                switch program[pc] {
                case .consume: list.append(pc)
                case .split(let a, let b): stack.append(b); stack.append(a)
                case .jump(let target): stack.append(target)
                case .textStart: if pos == 0 { stack.append(pc + 1) }
                case .textEnd: if pos == length { stack.append(pc + 1) }
                case .match: stack.removeAll(); return true
                }
            }
            return false
        }

        var pos = 0
        var index = input.startIndex
        while true {
            // Unanchored search: a match may start at every position.
            if add(0, pos, pos * 2, into: &current) { return true }
            guard index != input.endIndex else { return false }
            let byte = input[index]
            next.removeAll(keepingCapacity: true)
            for pc in current {
                if case .consume(let set) = program[pc], set.contains(byte) {
                    if add(pc + 1, pos + 1, pos * 2 + 1, into: &next) { return true }
                }
            }
            // States added to `next` at mark 2pos+1 must stay deduplicated when position pos+1 adds
            // its start state: renumber them to that position's mark.
            for pc in next { marks[pc] = (pos + 1) * 2 }
            swap(&current, &next)
            pos += 1
            index = input.index(after: index)
        }
    }

    // MARK: syntax tree

    indirect enum Node {
        case bytes(ByteSet)
        case sequence([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?)
        case textStart
        case textEnd
    }

    struct Parser {
        let text: [UInt8]
        var index = 0
        var depth = 0

        init(_ text: [UInt8]) { self.text = text }

        mutating func parse() throws -> Node {
            let node = try alternation()
            if index < text.count { throw SyntaxError(reason: "unexpected \")\"") }
            return node
        }

        private var peek: UInt8? { index < text.count ? text[index] : nil }

        private mutating func alternation() throws -> Node {
            var branches = [try sequence()]
            while peek == UInt8(ascii: "|") {
                index += 1
                branches.append(try sequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func sequence() throws -> Node {
            var items: [Node] = []
            while let byte = peek, byte != UInt8(ascii: "|"), byte != UInt8(ascii: ")") {
                var atom = try self.atom()
                if let quantifier = try self.quantifier() {
                    atom = .repeated(atom, min: quantifier.min, max: quantifier.max)
                    // Go's RE2 (what V2Ray compiles these with) refuses a repetition of a repetition
                    // (`a**`, `a+{2}`); a group is needed for that.
                    let at = index
                    if try self.quantifier() != nil {
                        throw SyntaxError(reason: "invalid nested repetition operator at byte \(at)")
                    }
                }
                items.append(atom)
            }
            return items.count == 1 ? items[0] : .sequence(items)
        }

        private mutating func atom() throws -> Node {
            let byte = text[index]
            index += 1
            switch byte {
            case UInt8(ascii: "("):
                depth += 1
                guard depth <= 100 else { throw SyntaxError(reason: "groups nested more than 100 deep") }
                if peek == UInt8(ascii: "?") {
                    guard index + 1 < text.count, text[index + 1] == UInt8(ascii: ":") else {
                        throw SyntaxError(reason: "group flags and named groups are not supported")
                    }
                    index += 2
                }
                let inner = try alternation()
                guard peek == UInt8(ascii: ")") else { throw SyntaxError(reason: "missing \")\"") }
                index += 1
                depth -= 1
                return inner
            case UInt8(ascii: "["): return .bytes(try characterClass())
            case UInt8(ascii: "."): return .bytes(ByteSet.all)
            case UInt8(ascii: "^"): return .textStart
            case UInt8(ascii: "$"): return .textEnd
            case UInt8(ascii: "\\"): return try escape(inClass: false)
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                throw SyntaxError(reason: "missing argument to repetition operator")
            default: return .bytes(ByteSet(byte))
            }
        }

        private mutating func quantifier() throws -> (min: Int, max: Int?)? {
            guard let byte = peek else { return nil }
            var result: (min: Int, max: Int?)
            switch byte {
            case UInt8(ascii: "*"): index += 1; result = (0, nil)
            case UInt8(ascii: "+"): index += 1; result = (1, nil)
            case UInt8(ascii: "?"): index += 1; result = (0, 1)
            case UInt8(ascii: "{"):
                // RE2 reads a `{` that does not start a valid count as a literal.
                let save = index
                index += 1
                guard let low = number() else { index = save; return nil }
                var high: Int? = low
                if peek == UInt8(ascii: ",") {
                    index += 1
                    high = number()
                }
                guard peek == UInt8(ascii: "}") else { index = save; return nil }
                index += 1
                guard low <= DomainRegex.maximumRepeat, (high ?? 0) <= DomainRegex.maximumRepeat else {
                    throw SyntaxError(reason: "repeat count larger than \(DomainRegex.maximumRepeat)")
                }
                if let high, high < low { throw SyntaxError(reason: "invalid repeat count {\(low),\(high)}") }
                result = (low, high)
            default: return nil
            }
            if peek == UInt8(ascii: "?") { index += 1 }  // lazy: same yes/no answer
            return result
        }

        private mutating func number() -> Int? {
            var value = 0
            var digits = 0
            while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 1_000_000)
                digits += 1
                index += 1
            }
            return digits > 0 ? value : nil
        }

        private mutating func characterClass() throws -> ByteSet {
            var set = ByteSet()
            var negated = false
            if peek == UInt8(ascii: "^") { negated = true; index += 1 }
            var first = true
            while true {
                guard let byte = peek else { throw SyntaxError(reason: "missing \"]\"") }
                if byte == UInt8(ascii: "]") && !first { index += 1; break }
                first = false
                if byte == UInt8(ascii: "[") && index + 1 < text.count && text[index + 1] == UInt8(ascii: ":") {
                    throw SyntaxError(reason: "POSIX classes like [:alpha:] are not supported")
                }
                index += 1
                var low = byte
                if byte == UInt8(ascii: "\\") {
                    guard case .bytes(let escaped) = try escape(inClass: true) else {
                        throw SyntaxError(reason: "invalid escape in class")
                    }
                    guard let single = escaped.singleByte else { set.formUnion(escaped); continue }
                    low = single
                }
                if peek == UInt8(ascii: "-"), index + 1 < text.count, text[index + 1] != UInt8(ascii: "]") {
                    index += 1
                    var high = text[index]
                    index += 1
                    if high == UInt8(ascii: "\\") {
                        guard case .bytes(let escaped) = try escape(inClass: true), let single = escaped.singleByte else {
                            throw SyntaxError(reason: "invalid range end in class")
                        }
                        high = single
                    }
                    guard low <= high else { throw SyntaxError(reason: "invalid class range") }
                    set.insert(low...high)
                } else {
                    set.insert(low)
                }
            }
            return negated ? set.inverted : set
        }

        private mutating func escape(inClass: Bool) throws -> Node {
            guard let byte = peek else { throw SyntaxError(reason: "trailing backslash") }
            index += 1
            var set = ByteSet()
            switch byte {
            case UInt8(ascii: "d"), UInt8(ascii: "D"):
                set.insert(UInt8(ascii: "0")...UInt8(ascii: "9"))
                return .bytes(byte == UInt8(ascii: "d") ? set : set.inverted)
            case UInt8(ascii: "w"), UInt8(ascii: "W"):
                set.insert(UInt8(ascii: "0")...UInt8(ascii: "9"))
                set.insert(UInt8(ascii: "a")...UInt8(ascii: "z"))
                set.insert(UInt8(ascii: "A")...UInt8(ascii: "Z"))
                set.insert(UInt8(ascii: "_"))
                return .bytes(byte == UInt8(ascii: "w") ? set : set.inverted)
            case UInt8(ascii: "s"), UInt8(ascii: "S"):
                for b in [9, 10, 12, 13, 32] as [UInt8] { set.insert(b) }
                return .bytes(byte == UInt8(ascii: "s") ? set : set.inverted)
            case UInt8(ascii: "t"): return .bytes(ByteSet(9))
            case UInt8(ascii: "n"): return .bytes(ByteSet(10))
            case UInt8(ascii: "r"): return .bytes(ByteSet(13))
            case UInt8(ascii: "A") where !inClass: return .textStart
            case UInt8(ascii: "z") where !inClass: return .textEnd
            default:
                // RE2: any punctuation may be escaped to stand for itself; escaped letters and digits
                // are reserved (\b, \pN, \1 ...), and those are not supported here.
                guard byte < 0x80, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte),
                      !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) else {
                    throw SyntaxError(reason: "escape \\\(Character(Unicode.Scalar(byte))) is not supported")
                }
                return .bytes(ByteSet(byte))
            }
        }
    }

    struct Compiler {
        var program: [Instruction] = []
        let limit: Int

        init(limit: Int) { self.limit = limit }

        mutating func emit(_ node: Node) throws {
            guard program.count < limit else { throw SyntaxError(reason: "pattern too large") }
            switch node {
            case .bytes(let set): program.append(.consume(set))
            case .textStart: program.append(.textStart)
            case .textEnd: program.append(.textEnd)
            case .sequence(let items):
                for item in items { try emit(item) }
            case .alternation(let branches):
                guard !branches.isEmpty else { return }
                // split L1, next; L1: branch; jmp end; next: split ... ; last branch
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i == branches.count - 1 {
                        try emit(branch)
                    } else {
                        let split = program.count
                        program.append(.split(split + 1, -1))
                        try emit(branch)
                        jumps.append(program.count)
                        program.append(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let inner, let min, let max):
                if max == nil, min >= 1 {
                    // x{n,}: n-1 copies, then the last one is also the loop body (L: x; split L, next),
                    // so `x+` is one copy of x, not two: nested groups like ((x+)+)+ stay linear in size.
                    for _ in 1..<min { try emit(inner) }
                    let body = program.count
                    try emit(inner)
                    program.append(.split(body, program.count + 1))
                    return
                }
                for _ in 0..<min { try emit(inner) }
                if let max {
                    // x{0,k} as nested optionals: split(x, end) x split(x, end) x ...
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(program.count)
                        program.append(.split(program.count + 1, -1))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let loop = program.count
                    program.append(.split(loop + 1, -1))
                    try emit(inner)
                    program.append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}

extension ByteSet {
    /// The only member, if the set has exactly one.
    var singleByte: UInt8? {
        var found: UInt8?
        for byte in 0...255 where contains(UInt8(byte)) {
            if found != nil { return nil }
            found = UInt8(byte)
        }
        return found
    }
}
