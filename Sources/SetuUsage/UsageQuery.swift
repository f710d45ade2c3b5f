import SetuFormats

/// What `setu usage` counts: a time range, filters on the hits, and what to group by.
public struct UsageQuery: Sendable {
    /// A way to group hits.
    public enum Dimension: String, Sendable, CaseIterable {
        case consumer, api, publisher, operation, day, hour, status, decision
    }

    /// The first millisecond counted, when limited.
    public var since: Int64?
    /// The first millisecond not counted, when limited.
    public var until: Int64?
    /// Only these consumers, APIs and publishers, when given.
    public var consumers: Set<String> = []
    public var apis: Set<String> = []
    public var publishers: Set<String> = []
    /// Only these statuses: exact (`429`) or by class (`4xx`).
    public var statuses: [StatusFilter] = []
    /// Only these decisions: exact (`deny:rate-limited`) or by kind (`deny`, `error`, `allow`).
    public var decisions: [String] = []
    /// The columns each row is grouped by, in order; none gives one row for all hits.
    public var groupBy: [Dimension] = []

    public init() {}

    /// A status, or a class of them.
    public enum StatusFilter: Sendable, Equatable {
        case exact(Int)
        case hundreds(Int)

        /// `429`, or `4xx`.
        public init?(_ text: String) {
            let lower = text.lowercased()
            if lower.count == 3, lower.hasSuffix("xx"), let first = lower.first?.wholeNumberValue, (1...5).contains(first) {
                self = .hundreds(first)
            } else if let status = Int(lower), (100...599).contains(status) {
                self = .exact(status)
            } else {
                return nil
            }
        }

        func matches(_ status: Int) -> Bool {
            switch self {
            case .exact(let wanted): status == wanted
            case .hundreds(let first): status / 100 == first
            }
        }
    }

    /// Whether a hit is counted; reads from its line only the strings a filter asks about.
    func admits(_ hit: RawHit, in line: UnsafeBufferPointer<UInt8>) throws(HitLine.Failure) -> Bool {
        if let since, hit.milliseconds < since { return false }
        if let until, hit.milliseconds >= until { return false }
        guard admits(status: hit.status) else { return false }
        if !consumers.isEmpty, !consumers.contains(try hit.consumer.text(in: line) ?? "") { return false }
        if !apis.isEmpty, !apis.contains(try hit.api.text(in: line) ?? "") { return false }
        if !publishers.isEmpty, !publishers.contains(try hit.publisher.text(in: line) ?? "") { return false }
        guard !decisions.isEmpty else { return true }
        return admits(decision: try hit.decision.text(in: line) ?? "")
    }

    private func admits(status: Int) -> Bool {
        statuses.isEmpty || statuses.contains { $0.matches(status) }
    }

    /// A decision asked for exactly, or by its kind: `deny` admits every `deny:<reason>`.
    private func admits(decision: String) -> Bool {
        decisions.isEmpty || decisions.contains { $0 == decision || (!$0.contains(":") && decision.hasPrefix($0 + ":")) }
    }

    /// Whether every millisecond of `hour` (hours since 1970) is in the range: only then can
    /// its rollup rows be counted whole.
    func coversWholeHour(_ hour: Int64) -> Bool {
        (since ?? .min) <= hour * 3_600_000 && (hour + 1) * 3_600_000 <= (until ?? .max)
    }

    /// The hours the range covers only in part, whose hits are read from the hit files.
    var partialHours: [Int64] {
        [since, until].compactMap { bound in
            guard let bound else { return nil }
            let (hour, rest) = bound.quotientAndRemainderFloored(dividingBy: 3_600_000)
            return rest == 0 ? nil : hour
        }
    }

    /// Whether a rollup row is counted: its hour wholly in range, and its values (empty for
    /// none) through the filters, as `admits` does for a hit.
    func admitsRolledUp(hour: Int64, consumer: String, api: String, publisher: String, status: Int, decision: String) -> Bool {
        guard coversWholeHour(hour), admits(status: status) else { return false }
        if !consumers.isEmpty, !consumers.contains(consumer) { return false }
        if !apis.isEmpty, !apis.contains(api) { return false }
        if !publishers.isEmpty, !publishers.contains(publisher) { return false }
        return admits(decision: decision)
    }

    /// A hit's value in a column: `-` where the hit has none (a request refused before routing has no API).
    /// `hours` keeps the last hour's and day's text, as consecutive hits mostly share them.
    static func value(
        of hit: RawHit, _ dimension: Dimension, in line: UnsafeBufferPointer<UInt8>, hours: inout HourNames
    ) throws(HitLine.Failure) -> String {
        switch dimension {
        case .consumer: try hit.consumer.text(in: line) ?? "-"
        case .api: try hit.api.text(in: line) ?? "-"
        case .publisher: try hit.publisher.text(in: line) ?? "-"
        case .operation: try hit.operation.text(in: line) ?? "-"
        case .day: hours.names(of: hit.milliseconds).day
        case .hour: hours.names(of: hit.milliseconds).hour
        case .status: String(hit.status)
        case .decision: try hit.decision.text(in: line) ?? "-"
        }
    }

    /// The day (`2026-11-29`) and hour (`2026-11-29T08:00Z`) of the last hour asked about.
    struct HourNames {
        private var hour: Int64 = -1
        private var last = (day: "", hour: "")

        mutating func names(of milliseconds: Int64) -> (day: String, hour: String) {
            let (hour, _) = milliseconds.quotientAndRemainderFloored(dividingBy: 3_600_000)
            if hour != self.hour {
                self.hour = hour
                let text = Timestamp.rfc3339(milliseconds: hour * 3_600_000)
                last = (String(text.prefix(10)), String(text.prefix(13)) + ":00Z")
            }
            return last
        }
    }

    /// Reads `--since`/`--until`: a day (`2026-11-29`, its first millisecond, UTC), a time
    /// (`2026-11-29T08:00:00Z`), or a duration back from `now` (`90m`, `24h`, `7d`).
    public static func time(_ text: String, now: Int64) -> Int64? {
        if let days = Timestamp.daysSinceEpoch(of: text), text.count == 10 { return days * 86_400_000 }
        if let milliseconds = UsageTime.milliseconds(rfc3339: text) { return milliseconds }
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount >= 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        case "w": scale = 7 * 86_400_000
        default: return nil
        }
        let (back, overflow) = amount.multipliedReportingOverflow(by: scale)
        return overflow ? nil : now - back
    }
}
