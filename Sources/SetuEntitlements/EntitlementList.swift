/// Entitlements sorted by consumer, subscription and state, held as one run per
/// consumer. Replacing a consumer's entitlements copies that run and the list of
/// runs, never the other consumers' entitlements, even while an earlier version of
/// the list is still in use (the status being served while the daemon updates it).
/// A flat array would be copied whole, strings and all, at every update.
public struct EntitlementList: Sendable, Hashable, RandomAccessCollection {
    /// Each consumer's entitlements, sorted by `order`; no run is empty. Runs are sorted by consumer.
    private var runs: [[Entitlement]]
    /// Where each run starts in the whole list, and the list's length after the last.
    private var starts: [Int]
    /// How many entitlements are active, pending, expired and invalid (`State.allCases` order).
    private var tally: [Int]

    /// An empty list.
    public init() {
        runs = []
        starts = [0]
        tally = Self.tally(of: [])
    }

    /// A list of entitlements in any order: grouped by consumer first, so that only each
    /// consumer's few are sorted rather than the whole list, which compares long strings.
    public init(_ entitlements: some Sequence<Entitlement>) {
        var byConsumer: [String: [Entitlement]] = [:]
        for entitlement in entitlements { byConsumer[entitlement.consumer, default: []].append(entitlement) }
        var runs: [[Entitlement]] = []
        runs.reserveCapacity(byConsumer.count)
        for consumer in byConsumer.keys.sorted() {
            var run = byConsumer.removeValue(forKey: consumer)!
            run.sort(by: Self.order)
            runs.append(run)
        }
        self.runs = runs
        starts = []
        tally = Self.tally(of: runs)
        countRuns()
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { starts[starts.count - 1] }

    public subscript(position: Int) -> Entitlement {
        precondition(position >= 0 && position < endIndex, "index out of range")
        let run = runIndex(containing: position)
        return runs[run][position - starts[run]]
    }

    /// Walks the runs in turn rather than searching for each position.
    public struct Iterator: IteratorProtocol {
        fileprivate var runs: IndexingIterator<[[Entitlement]]>
        fileprivate var current: IndexingIterator<[Entitlement]>

        public mutating func next() -> Entitlement? {
            while true {
                if let next = current.next() { return next }
                guard let run = runs.next() else { return nil }
                current = run.makeIterator()
            }
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(runs: runs.makeIterator(), current: [].makeIterator())
    }

    /// A consumer's entitlements, sorted by subscription and state.
    public func entitlements(of consumer: String) -> [Entitlement] {
        let run = lowerBound(ofConsumer: consumer)
        return run < runs.count && runs[run][0].consumer == consumer ? runs[run] : []
    }

    /// Replaces a consumer's entitlements with `entitlements`, all of which are that consumer's.
    public mutating func replace(entitlementsOf consumer: String, with entitlements: [Entitlement]) {
        precondition(entitlements.allSatisfy { $0.consumer == consumer }, "entitlements of another consumer")
        let run = lowerBound(ofConsumer: consumer)
        let present = run < runs.count && runs[run][0].consumer == consumer
        if present { Self.count(runs[run], into: &tally, adding: -1) }
        Self.count(entitlements, into: &tally, adding: 1)
        switch (present, entitlements.isEmpty) {
        case (true, true): runs.remove(at: run)
        case (true, false): runs[run] = entitlements.sorted(by: Self.order)
        case (false, false): runs.insert(entitlements.sorted(by: Self.order), at: run)
        case (false, true): return
        }
        countRuns()
    }

    /// Changes every entitlement by `change`, keeping the order.
    public mutating func updateEach(_ change: (inout Entitlement) -> Void) {
        for run in runs.indices {
            for index in runs[run].indices { change(&runs[run][index]) }
            runs[run].sort(by: Self.order)
        }
        tally = Self.tally(of: runs)
    }

    /// How many entitlements are in each state (every state, zero included).
    public var counts: [Entitlement.State: Int] {
        Dictionary(uniqueKeysWithValues: zip(Entitlement.State.allCases, tally))
    }

    private static func tally(of runs: [[Entitlement]]) -> [Int] {
        var tally = [0, 0, 0, 0]
        for run in runs { count(run, into: &tally, adding: 1) }
        return tally
    }

    private static func count(_ run: [Entitlement], into tally: inout [Int], adding one: Int) {
        for index in run.indices {
            switch run[index].state {
            case .active: tally[0] += one
            case .pending: tally[1] += one
            case .expired: tally[2] += one
            case .invalid: tally[3] += one
            }
        }
    }

    public static func == (a: EntitlementList, b: EntitlementList) -> Bool {
        a.runs == b.runs
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(runs)
    }

    /// The order of the list: by consumer, subscription, state, then path.
    static func order(_ a: Entitlement, _ b: Entitlement) -> Bool {
        if a.consumer != b.consumer { return a.consumer < b.consumer }
        if a.subscription != b.subscription { return a.subscription < b.subscription }
        if a.state != b.state { return a.state.rawValue < b.state.rawValue }
        return a.path < b.path
    }

    private mutating func countRuns() {
        var starts = [0]
        starts.reserveCapacity(runs.count + 1)
        for run in runs { starts.append(starts[starts.count - 1] + run.count) }
        self.starts = starts
    }

    /// The run of a consumer, or where it would go.
    private func lowerBound(ofConsumer consumer: String) -> Int {
        var low = 0, high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle][0].consumer < consumer { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The run holding a position of the whole list.
    private func runIndex(containing position: Int) -> Int {
        var low = 0, high = runs.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if starts[middle] <= position { low = middle } else { high = middle - 1 }
        }
        return low
    }
}

extension EntitlementList: Codable {
    /// Encoded as the flat list it is.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Array(self))
    }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode([Entitlement].self))
    }
}
