import Foundation
import Histogram
import SetuFormats
import SetuHits
import SetuUsage

/// The operator dashboard (`/dashboard` on the admin listener): traffic by status class,
/// latency percentiles, denials by reason, top consumers and APIs, quota use, alerts firing,
/// the reconcile status and pending approvals, over the last hour, day or week.
public struct Dashboard: Sendable {
    /// How far back the page looks, and in what steps.
    public enum Range: String, Sendable, CaseIterable {
        case hour, day, week

        /// Buckets shown: minutes for the hour, hours for the day and the week.
        public var buckets: Int {
            switch self {
            case .hour: 60
            case .day: 24
            case .week: 168
            }
        }
    }

    /// One step of time: requests by status class (index 1 to 5) and latency percentiles.
    public struct Bucket: Sendable {
        public var start: Int64
        public var byClass: [UInt64]
        public var p50: Double?
        public var p95: Double?
        public var p99: Double?
    }

    /// A consumer's or an API's requests in the range.
    public struct Top: Sendable {
        public var name: String
        public var requests: UInt64
        public var denied: UInt64
        public var errors: UInt64
    }

    /// What the hits say over a range: filled by `load`.
    public struct Traffic: Sendable {
        public var buckets: [Bucket] = []
        public var denials: [(reason: String, count: UInt64)] = []
        public var consumers: [Top] = []
        public var apis: [Top] = []
        /// What the reader said of where it read from (hits past the rollups).
        public var notes: [String] = []
    }

    public struct Quota: Sendable {
        public var consumer: String
        public var api: String
        public var period: String
        public var used: Int64
        public var limit: Int64?

        public init(consumer: String, api: String, period: String, used: Int64, limit: Int64?) {
            self.consumer = consumer
            self.api = api
            self.period = period
            self.used = used
            self.limit = limit
        }
    }

    public struct Reconcile: Sendable {
        public var ready: Bool
        public var revision: String?
        public var servingSince: String?
        public var lastResult: String?
        public var lastAt: String?
        public var lastDurationMs: Double?
        public var lastError: String?
        public var conditions: [(type: String, status: Bool, reason: String, message: String)]

        public init(
            ready: Bool, revision: String?, servingSince: String?, lastResult: String?, lastAt: String?, lastDurationMs: Double?,
            lastError: String?, conditions: [(type: String, status: Bool, reason: String, message: String)]
        ) {
            self.ready = ready
            self.revision = revision
            self.servingSince = servingSince
            self.lastResult = lastResult
            self.lastAt = lastAt
            self.lastDurationMs = lastDurationMs
            self.lastError = lastError
            self.conditions = conditions
        }
    }

    public struct Pending: Sendable {
        public var path: String
        public var commit: String
        public var by: String
        public var message: String
        public var needs: [String]

        public init(path: String, commit: String, by: String, message: String, needs: [String]) {
            self.path = path
            self.commit = commit
            self.by = by
            self.message = message
            self.needs = needs
        }
    }

    public var range: Range
    public var now: Int64
    public var traffic: Traffic
    public var quotas: [Quota]
    public var alerts: [AlertEvaluator.Firing]
    public var reconcile: Reconcile
    public var pending: [Pending]

    public init(
        range: Range, now: Int64, traffic: Traffic, quotas: [Quota], alerts: [AlertEvaluator.Firing], reconcile: Reconcile,
        pending: [Pending]
    ) {
        self.range = range
        self.now = now
        self.traffic = traffic
        self.quotas = quotas
        self.alerts = alerts
        self.reconcile = reconcile
        self.pending = pending
    }

    /// The hits of the range: the last hour from `live`, minute by minute; a day or a week
    /// from the hit directory, hour by hour (whole hours from the rollups, the hour in
    /// progress from the hit files).
    public static func load(range: Range, now: Int64, hitDirectory: String, live: LiveSeries) throws -> Traffic {
        var traffic = Traffic()
        if range == .hour {
            let minutes = live.hour(endingAt: now)
            var denials: [String: UInt64] = [:]
            var consumers: [String: LiveSeries.Counts] = [:]
            var apis: [String: LiveSeries.Counts] = [:]
            traffic.buckets = minutes.map { minute in
                denials.merge(minute.denials, uniquingKeysWith: +)
                for (name, counts) in minute.consumers { consumers[name, default: .init()].add(counts) }
                for (name, counts) in minute.apis { apis[name, default: .init()].add(counts) }
                return bucket(start: minute.start, byClass: minute.byClass, latency: minute.latency)
            }
            traffic.denials = sorted(denials)
            traffic.consumers = top(consumers)
            traffic.apis = top(apis)
            return traffic
        }
        let thisHour = now / 3_600_000
        let first = thisHour - Int64(range.buckets) + 1
        var byTime = UsageQuery()
        byTime.since = first * 3_600_000
        byTime.groupBy = [.hour, .status, .decision]
        let days = (first / 24)...(thisHour / 24 + 1)
        var byConsumer = UsageQuery()
        byConsumer.since = byTime.since
        byConsumer.groupBy = [.consumer]
        var byAPI = byConsumer
        byAPI.groupBy = [.api]
        let reports = try [byTime, byConsumer, byAPI].map { try HitLogReader.report($0, paths: [hitDirectory], days: days) }
        // Each hour's rows, one per status and decision, are merged: their classes added, and the
        // latency of the requests let through joined.
        var hours: [Int64: (byClass: [UInt64], latency: Histogram<UInt64>)] = [:]
        var denials: [String: UInt64] = [:]
        for row in reports[0].rows {
            guard let start = UsageTime.milliseconds(rfc3339: row.key[0].replacingOccurrences(of: ":00Z", with: ":00:00Z")),
                let status = Int(row.key[1])
            else { continue }
            var hour = hours[start / 3_600_000] ?? ([UInt64](repeating: 0, count: 6), UsageReport.Row.histogram())
            hour.byClass[min(max(status / 100, 0), 5)] += row.requests
            if row.key[2] == "allow" { hour.latency.add(row.latency) }
            hours[start / 3_600_000] = hour
            denials.merge(row.denied, uniquingKeysWith: +)
        }
        traffic.buckets = (first...thisHour).map { hour in
            let counts = hours[hour]
            return bucket(start: hour * 3_600_000, byClass: counts?.byClass ?? [UInt64](repeating: 0, count: 6), latency: counts?.latency)
        }
        traffic.denials = sorted(denials)
        traffic.consumers = reports[1].rows.map(top).sorted(by: busiest).prefix(10).map { $0 }
        traffic.apis = reports[2].rows.map(top).sorted(by: busiest).prefix(10).map { $0 }
        traffic.notes = reports[0].rollupNotes()
        return traffic
    }

    private static func bucket(start: Int64, byClass: [UInt64], latency: Histogram<UInt64>?) -> Bucket {
        func percentile(_ value: Double) -> Double? {
            guard let latency, latency.totalCount > 0 else { return nil }
            return Double(latency.valueAtPercentile(value)) / 1000
        }
        return Bucket(start: start, byClass: byClass, p50: percentile(50), p95: percentile(95), p99: percentile(99))
    }

    private static func sorted(_ counts: [String: UInt64]) -> [(reason: String, count: UInt64)] {
        counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, $0.value) }
    }

    private static func top(_ counts: [String: LiveSeries.Counts]) -> [Top] {
        counts.map { Top(name: $0.key, requests: $0.value.requests, denied: $0.value.denied, errors: $0.value.errors) }
            .sorted(by: busiest).prefix(10).map { $0 }
    }

    private static func top(_ row: UsageReport.Row) -> Top {
        // 5xx answers: the gateway's errors, and the upstream's 5xx passed on.
        let passedOn = row.upstreamErrors - row.errors.filter { $0.key.hasPrefix("upstream-") }.values.reduce(0, +)
        return Top(name: row.key.first ?? "-", requests: row.requests, denied: row.deniedTotal, errors: row.errorsTotal + passedOn)
    }

    private static func busiest(_ a: Top, _ b: Top) -> Bool {
        (a.requests, b.name) > (b.requests, a.name)
    }
}

extension LiveSeries.Counts {
    fileprivate mutating func add(_ other: LiveSeries.Counts) {
        requests += other.requests
        denied += other.denied
        errors += other.errors
    }
}

extension Dashboard {
    /// How often the page reloads itself, in seconds.
    public static let refreshSeconds = 30

    /// The page.
    public func html() -> String {
        let times = traffic.buckets.map(\.start)
        let label: (Int64) -> String = { milliseconds in
            let text = Timestamp.rfc3339(milliseconds: milliseconds)
            return range == .week ? String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") : String(text.dropFirst(11).prefix(5))
        }
        let step = range == .hour ? "minute" : "hour"
        let classes = [(2, "2xx"), (3, "3xx"), (4, "4xx"), (5, "5xx")]
        let trafficChart = Chart.lines(
            id: "traffic-chart", title: "Requests per \(step) by status class",
            description: "\(traffic.buckets.count) points per line, one per \(step), from \(label(times.first ?? now)) to \(label(times.last ?? now)) UTC.",
            times: times,
            series: classes.map { digit, name in (name, "s" + name, traffic.buckets.map { Double($0.byClass[digit]) }) }, unit: "",
            timeLabel: label)
        let latencyChart = Chart.lines(
            id: "latency-chart", title: "Latency per \(step): 50th, 95th and 99th percentiles, in milliseconds",
            description: "\(traffic.buckets.count) points per line; a \(step) without requests let through shows 0.", times: times,
            series: [
                ("p50", "p50", traffic.buckets.map { $0.p50 ?? 0 }), ("p95", "p95", traffic.buckets.map { $0.p95 ?? 0 }),
                ("p99", "p99", traffic.buckets.map { $0.p99 ?? 0 }),
            ], unit: " ms", timeLabel: label)
        let denialsChart = Chart.bars(
            id: "denials-chart", title: "Requests refused, by reason",
            description: traffic.denials.map { "\($0.reason): \($0.count)" }.joined(separator: ", "),
            items: traffic.denials.map { ($0.reason, $0.count) })
        let context: [String: Any?] = [
            "range": range.rawValue, "nowText": String(Timestamp.rfc3339(milliseconds: now).prefix(16)).replacingOccurrences(of: "T", with: " "),
            "refreshSeconds": Self.refreshSeconds,
            "ranges": Range.allCases.map { ["name": $0.rawValue, "current": $0 == range] },
            "notes": traffic.notes,
            "reconcile": Pages.present([
                "ready": reconcile.ready, "revision": reconcile.revision, "servingSince": reconcile.servingSince,
                "lastResult": reconcile.lastResult, "lastAt": reconcile.lastAt,
                "lastDuration": reconcile.lastDurationMs.map { String(Int($0.rounded())) }, "lastError": reconcile.lastError,
                "conditions": reconcile.conditions.map { ["type": $0.type, "status": $0.status, "reason": $0.reason, "message": $0.message] },
            ]),
            "hasAlerts": !alerts.isEmpty,
            "alerts": alerts.map { firing in
                Pages.present([
                    "rule": firing.rule.name, "severity": firing.rule.severity, "metric": firing.rule.metricName, "window": firing.rule.window,
                    "selector": firing.rule.selector.isEmpty ? nil : firing.rule.selector.map { "\($0.0) \($0.1)" }.joined(separator: ", "),
                    "value": Pages.number(firing.value), "threshold": Pages.number(firing.rule.threshold),
                    "since": String(Timestamp.rfc3339(milliseconds: firing.since).prefix(19)).replacingOccurrences(of: "T", with: " "),
                ])
            },
            "traffic": trafficChart, "latency": latencyChart,
            "hasDenials": !traffic.denials.isEmpty, "denials": traffic.denials.isEmpty ? [] : [denialsChart],
            "hasQuotas": !quotas.isEmpty,
            "quotas": quotas.map { quota in
                Pages.present([
                    "consumer": quota.consumer, "api": quota.api, "period": quota.period, "used": quota.used, "limit": quota.limit,
                    "percent": quota.limit.map { $0 > 0 ? Int((Double(quota.used) * 100 / Double($0)).rounded()) : 0 },
                ])
            },
            "hasConsumers": !traffic.consumers.isEmpty, "consumers": traffic.consumers,
            "hasApis": !traffic.apis.isEmpty, "apis": traffic.apis,
            "hasPending": !pending.isEmpty,
            "pending": pending.map { change in
                [
                    "path": change.path, "commit": String(change.commit.prefix(12)), "by": change.by, "message": change.message,
                    "needs": change.needs.isEmpty ? "an approver of the publisher" : change.needs.joined(separator: ", "),
                ]
            },
        ]
        return Pages.render("dashboard", Pages.present(context))
    }

}
