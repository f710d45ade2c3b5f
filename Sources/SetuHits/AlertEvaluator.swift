import Histogram
import Synchronization

/// Evaluates alert rules on sliding windows of the live hits (DESIGN.md §8).
///
/// The hit log's writer thread hands it each batch of hits it wrote (`HitObserver`), so the
/// request path pays nothing for it; windows live in memory and no file is read again. A
/// rule's window is a ring of buckets, at most 60 of them plus the one filling: a hit is
/// counted in the bucket of its time, and a bucket leaves the window whole. Once a second
/// `evaluate` computes each rule's value over its window and says which rules started or
/// stopped firing.
public final class AlertEvaluator: HitObserver, Sendable {
    /// A rule as the evaluator applies it: from an `AlertRule` manifest.
    public struct Rule: Sendable, Equatable {
        /// What a rule measures over its window.
        public enum Metric: Sendable, Equatable {
            /// Answers with a 5xx status, as a fraction of requests.
            case errorRate
            /// A percentile (50, 95, 99) of the latency of requests let through, in milliseconds.
            case latency(percentile: Double)
            /// Requests refused (`deny:<reason>`), as a fraction of requests.
            case denialRate
            /// The largest fraction of a quota used this period, over the consumers and APIs selected.
            case quotaUse
            /// Requests the upstream failed: unreachable, broken off or timed out, or answered 5xx. A count.
            case upstreamFailures
        }

        public var name: String
        /// The manifest's spelling of the metric (`error-rate`), for events and pages.
        public var metricName: String
        public var metric: Metric
        public var threshold: Double
        /// The manifest's spelling of the window (`5m`), and the window in milliseconds.
        public var window: String
        public var windowMilliseconds: Int64
        public var severity: String
        public var description: String?
        public var publisher: String?
        public var api: String?
        public var consumer: String?
        public var webhook: String?

        public init(
            name: String, metricName: String, metric: Metric, threshold: Double, window: String, windowMilliseconds: Int64,
            severity: String, description: String? = nil, publisher: String? = nil, api: String? = nil, consumer: String? = nil,
            webhook: String? = nil
        ) {
            self.name = name
            self.metricName = metricName
            self.metric = metric
            self.threshold = threshold
            self.window = window
            self.windowMilliseconds = max(windowMilliseconds, 1000)
            self.severity = severity
            self.description = description
            self.publisher = publisher
            self.api = api
            self.consumer = consumer
            self.webhook = webhook
        }

        /// The selector as labels: only the parts the rule sets.
        public var selector: [(String, String)] {
            [("publisher", publisher), ("api", api), ("consumer", consumer)].compactMap { key, value in value.map { (key, $0) } }
        }

        func selects(consumer hitConsumer: String?, api hitAPI: String?, publisher hitPublisher: String?) -> Bool {
            (consumer == nil || consumer == hitConsumer) && (api == nil || api == hitAPI)
                && (publisher == nil || publisher == hitPublisher)
        }
    }

    /// A rule that fires: since when, and its value at the last evaluation.
    public struct Firing: Sendable, Equatable {
        public var rule: Rule
        public var value: Double
        /// Milliseconds since 1970.
        public var since: Int64
    }

    /// A rule started or stopped firing.
    public struct Event: Sendable, Equatable {
        public enum State: String, Sendable {
            case firing, resolved
        }

        public var rule: Rule
        public var state: State
        /// The value that made it fire or resolve; nil when it resolved because the rule went away.
        public var value: Double?
        /// When it happened, and when the alert started firing (milliseconds since 1970).
        public var at: Int64
        public var since: Int64
    }

    /// Quota use of one consumer on one API, as the gateway counts it.
    public struct QuotaSample: Sendable {
        public var consumer: String
        public var api: String
        public var used: Int64
        public var limit: Int64

        public init(consumer: String, api: String, used: Int64, limit: Int64) {
            self.consumer = consumer
            self.api = api
            self.used = used
            self.limit = limit
        }
    }

    private struct Bucket {
        /// Which bucket of time it holds: the time divided by the width; -1 when empty.
        var index: Int64 = -1
        var requests: UInt64 = 0
        var errors: UInt64 = 0
        var denials: UInt64 = 0
        var upstreamFailures: UInt64 = 0
        /// Latency of requests let through, in microseconds, for latency rules only.
        var latency: Histogram<UInt64>?
    }

    private struct Window {
        let width: Int64
        var buckets: [Bucket]

        init(rule: Rule) {
            // At most 60 buckets, of at least a second: a 5m window moves every 5 s.
            width = max(1000, (rule.windowMilliseconds + 59) / 60)
            let count = Int((rule.windowMilliseconds + width - 1) / width) + 1
            buckets = Array(repeating: Bucket(), count: count)
        }

        mutating func count(_ hit: HitRecord, latency: Bool) {
            let index = hit.timestampMilliseconds / width
            let slot = Int(index % Int64(buckets.count))
            if buckets[slot].index != index {
                // An older hit than the bucket holds is outside every window now.
                guard buckets[slot].index < index else { return }
                buckets[slot] = Bucket(index: index)
                if latency { buckets[slot].latency = LatencyHistogram.make() }
            }
            buckets[slot].requests += 1
            if hit.status >= 500 { buckets[slot].errors += 1 }
            if hit.decision.hasPrefix("deny:") { buckets[slot].denials += 1 }
            if hit.decision.hasPrefix("error:upstream-") || (hit.decision == "allow" && hit.status >= 500) {
                buckets[slot].upstreamFailures += 1
            }
            if hit.decision == "allow" {
                buckets[slot].latency?.record(UInt64(max(hit.latencyMilliseconds * 1000, 1)))
            }
        }

        /// The buckets inside the window ending at `now`: the one filling and those before it.
        func current(now: Int64) -> [Bucket] {
            let last = now / width
            let first = last - Int64(buckets.count) + 1
            return buckets.filter { $0.index >= first && $0.index <= last }
        }
    }

    private struct RuleState {
        var rule: Rule
        var window: Window
        var firing: Firing?
        var lastValue: Double?
    }

    private let rules = Mutex<[String: RuleState]>([:])
    /// Rules resolved because an update removed them, told by the next `evaluate`.
    private let removed = Mutex<[Event]>([])

    public init() {}

    /// Takes the rules in force after a reconcile. A new or changed rule starts with an
    /// empty window (a changed one keeps firing until its new evaluation says otherwise);
    /// a removed rule that was firing resolves, and the next `evaluate` says so.
    public func update(rules next: [Rule], now: Int64) {
        let resolved = rules.withLock { rules in
            var events: [Event] = []
            let names = Set(next.map(\.name))
            for (name, state) in rules where !names.contains(name) {
                if let firing = state.firing {
                    events.append(Event(rule: state.rule, state: .resolved, value: nil, at: now, since: firing.since))
                }
                rules[name] = nil
            }
            for rule in next {
                if let state = rules[rule.name], state.rule == rule { continue }
                var state = RuleState(rule: rule, window: Window(rule: rule))
                if var firing = rules[rule.name]?.firing {
                    firing.rule = rule
                    state.firing = firing
                }
                rules[rule.name] = state
            }
            return events.sorted { $0.rule.name < $1.rule.name }
        }
        removed.withLock { $0 += resolved }
    }

    /// Counts written hits into the windows of the rules that select them.
    public func observe<Hits: Collection>(_ hits: Hits) where Hits.Element == HitRecord {
        rules.withLock { rules in
            guard !rules.isEmpty else { return }
            for key in rules.keys {
                let rule = rules[key]!.rule
                if case .quotaUse = rule.metric { continue }
                var latency = false
                if case .latency = rule.metric { latency = true }
                for hit in hits where rule.selects(consumer: hit.consumer, api: hit.api, publisher: hit.publisher) {
                    rules[key]!.window.count(hit, latency: latency)
                }
            }
        }
    }

    /// Computes every rule's value over its window ending at `now` and returns the rules
    /// that started or stopped firing. A rule fires while its value is above its threshold;
    /// a window without requests has no value, and resolves a rule that was firing.
    /// - Parameter quotas: the gateway's quota use, asked for only when a quota rule exists.
    public func evaluate(now: Int64, quotas: () -> [QuotaSample]) -> [Event] {
        let needsQuotas = rules.withLock { $0.values.contains { if case .quotaUse = $0.rule.metric { true } else { false } } }
        let samples = needsQuotas ? quotas() : []
        let resolved = removed.withLock { removed in
            defer { removed = [] }
            return removed
        }
        return resolved
            + rules.withLock { rules in
                var events: [Event] = []
                for name in rules.keys.sorted() {
                    var state = rules[name]!
                    let value = Self.value(of: state, now: now, quotas: samples)
                    state.lastValue = value
                    if let value, value > state.rule.threshold {
                        if state.firing == nil {
                            state.firing = Firing(rule: state.rule, value: value, since: now)
                            events.append(Event(rule: state.rule, state: .firing, value: value, at: now, since: now))
                        } else {
                            state.firing!.value = value
                        }
                    } else if let firing = state.firing {
                        state.firing = nil
                        events.append(Event(rule: state.rule, state: .resolved, value: value ?? 0, at: now, since: firing.since))
                    }
                    rules[name] = state
                }
                return events
            }
    }

    private static func value(of state: RuleState, now: Int64, quotas: [QuotaSample]) -> Double? {
        let rule = state.rule
        if case .quotaUse = rule.metric {
            let selected = quotas.filter { sample in
                sample.limit > 0
                    && rule.selects(consumer: sample.consumer, api: sample.api, publisher: sample.api.split(separator: "/").first.map(String.init))
            }
            return selected.map { Double($0.used) / Double($0.limit) }.max()
        }
        let buckets = state.window.current(now: now)
        let requests = buckets.reduce(0) { $0 + $1.requests }
        guard requests > 0 else { return nil }
        switch rule.metric {
        case .errorRate:
            return Double(buckets.reduce(0) { $0 + $1.errors }) / Double(requests)
        case .denialRate:
            return Double(buckets.reduce(0) { $0 + $1.denials }) / Double(requests)
        case .upstreamFailures:
            return Double(buckets.reduce(0) { $0 + $1.upstreamFailures })
        case .latency(let percentile):
            var merged = LatencyHistogram.make()
            for bucket in buckets { if let latency = bucket.latency { merged.add(latency) } }
            guard merged.totalCount > 0 else { return nil }
            return Double(merged.valueAtPercentile(percentile)) / 1000
        case .quotaUse:
            return nil
        }
    }

    /// The rules firing now, by name.
    public var firing: [Firing] {
        rules.withLock { rules in rules.values.compactMap(\.firing).sorted { $0.rule.name < $1.rule.name } }
    }

    /// Every rule in force, by name, with its value at the last evaluation and whether it fires.
    public var states: [(rule: Rule, value: Double?, firing: Bool)] {
        rules.withLock { rules in
            rules.values.sorted { $0.rule.name < $1.rule.name }.map { ($0.rule, $0.lastValue, $0.firing != nil) }
        }
    }
}

/// Told of the hits the hit log wrote, on its writer thread, after each batch.
public protocol HitObserver: Sendable {
    func observe<Hits: Collection>(_ hits: Hits) where Hits.Element == HitRecord
}
