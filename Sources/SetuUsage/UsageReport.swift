import Histogram
import SetuHits

/// Usage counted over hit logs: one row per group, and the lines that could not be read.
public struct UsageReport: Sendable {
    /// The counts of one group of hits.
    public struct Row: Sendable {
        /// The group's value in each `groupBy` column.
        public var key: [String]
        public var requests: UInt64 = 0
        public var allowed: UInt64 = 0
        /// Requests refused (`deny:<reason>`), by reason.
        public var denied: [String: UInt64] = [:]
        /// Requests the gateway could not serve (`error:<reason>`), by reason.
        public var errors: [String: UInt64] = [:]
        /// Requests the upstream failed: it could not be reached or timed out
        /// (`error:upstream-…`), or it answered with a 5xx.
        public var upstreamErrors: UInt64 = 0
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
        /// Latency and upstream time, in microseconds.
        public var latency: Histogram<UInt64> { Self.recorded(recordedLatency, pendingLatency) }
        public var upstream: Histogram<UInt64> { Self.recorded(recordedUpstream, pendingUpstream) }
        private var recordedLatency = Row.histogram()
        private var recordedUpstream = Row.histogram()
        /// Times counted but not yet in the histograms, with how many hits had each. They are
        /// recorded `pendingTimes` at a time, so that a histogram's counts are in the cache
        /// while they are written: with hundreds of rows, recording each time as it came
        /// missed the cache on most.
        private var pendingLatency: [(time: UInt64, hits: UInt64)] = []
        private var pendingUpstream: [(time: UInt64, hits: UInt64)] = []
        private static let pendingTimes = 1024

        init(key: [String]) {
            self.key = key
        }

        /// An empty histogram of microseconds, as every reader of the hit log keeps them.
        public static func histogram() -> Histogram<UInt64> {
            LatencyHistogram.make()
        }

        public var deniedTotal: UInt64 { denied.values.reduce(0, +) }
        public var errorsTotal: UInt64 { errors.values.reduce(0, +) }

        /// What became of a request: allowed, refused for a reason, or failed for one.
        enum Outcome {
            case allow
            case deny(String)
            case error(String)

            /// From a hit's `decision`: `allow`, `deny:<reason>` or `error:<reason>`.
            init(decision: String) {
                if decision == "allow" {
                    self = .allow
                } else if decision.hasPrefix("deny:") {
                    self = .deny(String(decision.dropFirst(5)))
                } else {
                    self = .error(decision.hasPrefix("error:") ? String(decision.dropFirst(6)) : decision)
                }
            }
        }

        mutating func count(
            _ outcome: Outcome, status: Int, latency latencyTime: UInt64, upstream upstreamTime: UInt64?, bytesIn: UInt64,
            bytesOut: UInt64
        ) {
            count(outcome, status: status, requests: 1, bytesIn: bytesIn, bytesOut: bytesOut)
            record(latency: max(latencyTime, 1), count: 1)
            if let upstreamTime { record(upstream: max(upstreamTime, 1), count: 1) }
        }

        /// Records that `count` hits each took `time` microseconds: in all, or upstream.
        mutating func record(latency time: UInt64, count: UInt64) {
            Self.hold((time, count), in: &pendingLatency, for: &recordedLatency)
        }

        mutating func record(upstream time: UInt64, count: UInt64) {
            Self.hold((time, count), in: &pendingUpstream, for: &recordedUpstream)
        }

        private static func hold(
            _ entry: (time: UInt64, hits: UInt64), in pending: inout [(time: UInt64, hits: UInt64)], for histogram: inout Histogram<UInt64>
        ) {
            if pending.capacity == 0 { pending.reserveCapacity(pendingTimes) }
            pending.append(entry)
            guard pending.count == pendingTimes else { return }
            record(pending, into: &histogram)
            pending.removeAll(keepingCapacity: true)
        }

        private static func record(_ pending: [(time: UInt64, hits: UInt64)], into histogram: inout Histogram<UInt64>) {
            for (time, hits) in pending { histogram.record(time, count: hits) }
        }

        /// `histogram` with `pending` recorded.
        private static func recorded(_ histogram: Histogram<UInt64>, _ pending: [(time: UInt64, hits: UInt64)]) -> Histogram<UInt64> {
            var histogram = histogram
            record(pending, into: &histogram)
            return histogram
        }

        /// Records the pending times and lets their buffers go, once no more hits come.
        mutating func settle() {
            Self.record(pendingLatency, into: &recordedLatency)
            Self.record(pendingUpstream, into: &recordedUpstream)
            pendingLatency = []
            pendingUpstream = []
        }

        /// Counts `requests` hits alike in outcome and status, without their times.
        mutating func count(_ outcome: Outcome, status: Int, requests count: UInt64, bytesIn: UInt64, bytesOut: UInt64) {
            requests += count
            self.bytesIn += bytesIn
            self.bytesOut += bytesOut
            switch outcome {
            case .allow:
                allowed += count
                if status >= 500 { upstreamErrors += count }
            case .deny(let reason):
                denied[reason, default: 0] += count
            case .error(let reason):
                errors[reason, default: 0] += count
                if reason.hasPrefix("upstream-") { upstreamErrors += count }
            }
        }

        /// A hit read in full, as `count` takes it.
        mutating func count(_ hit: UsageHit) {
            count(
                Outcome(decision: hit.decision), status: hit.status, latency: hit.latencyMicroseconds, upstream: hit.upstreamMicroseconds,
                bytesIn: hit.bytesIn, bytesOut: hit.bytesOut)
        }

        mutating func add(_ other: Row) {
            requests += other.requests
            allowed += other.allowed
            denied.merge(other.denied, uniquingKeysWith: +)
            errors.merge(other.errors, uniquingKeysWith: +)
            upstreamErrors += other.upstreamErrors
            bytesIn += other.bytesIn
            bytesOut += other.bytesOut
            recordedLatency.add(other.latency)
            recordedUpstream.add(other.upstream)
        }

        /// A percentile of latency or upstream time in milliseconds; nil when none was recorded.
        public static func milliseconds(_ histogram: Histogram<UInt64>, percentile: Double) -> Double? {
            histogram.totalCount == 0 ? nil : Double(histogram.valueAtPercentile(percentile)) / 1000
        }
    }

    /// A line that is not a hit.
    public struct Problem: Sendable, Equatable {
        public var file: String
        /// From 1.
        public var line: Int
        public var reason: String
        /// Whether it is the file's last line, without its newline: a write cut short.
        public var truncated: Bool
    }

    /// The grouping the rows follow.
    public var groupBy: [UsageQuery.Dimension]
    /// Sorted by key.
    public var rows: [Row]
    /// Lines read, hits among them counted (the others were outside the range or filters).
    public var linesRead: UInt64 = 0
    public var hitsCounted: UInt64 = 0
    /// Lines that could not be read, by count, with the first ones kept.
    public var corruptLines: UInt64 = 0
    public var truncatedLines: UInt64 = 0
    public var problems: [Problem] = []
    /// The files read.
    public var files: [String] = []
    /// Hits counted from hourly rollups rather than read, and the rollup rows they came from.
    public var rolledUpHits: UInt64 = 0
    public var rollupRows: UInt64 = 0
    /// Whether any directory had rollups for the files asked about.
    public var rollupsUsed = false
    /// Hit files of directories that their rollups do not wholly cover: read from a line.
    public var unrolled: [Unrolled] = []

    /// A hit file read because its rollups do not reach its end.
    public struct Unrolled: Sendable, Equatable {
        public var file: String
        /// The first line no rollup holds; 1 when none does.
        public var fromLine: Int
    }
    /// At most this many problems are kept to show; all are counted.
    static let problemsKept = 20
}

/// Counts hits into rows while files are read: one per thread, merged at the end.
struct UsageTally {
    let query: UsageQuery
    /// The rows, in the order their groups came.
    var rows: [UsageReport.Row] = []
    /// Each row's place in `rows`, by the group's values joined with U+001F (one value as
    /// it is, which takes no allocation for a short API id or consumer name). A place stays
    /// as rows are added, so a reader may keep it.
    var rowNumbers: [String: Int] = [:]
    var linesRead: UInt64 = 0
    var hitsCounted: UInt64 = 0
    var corruptLines: UInt64 = 0
    var truncatedLines: UInt64 = 0
    var problems: [UsageReport.Problem] = []
    /// Hits counted from rollups rather than read, and the rollup rows read.
    var rolledUpHits: UInt64 = 0
    var rollupRows: UInt64 = 0
    var hourNames = UsageQuery.HourNames()

    init(query: UsageQuery) {
        self.query = query
    }

    /// Counts a hit of `line` when the query admits it.
    mutating func count(_ hit: RawHit, in line: UnsafeBufferPointer<UInt8>) throws(HitLine.Failure) {
        guard try query.admits(hit, in: line) else { return }
        // Most hits are allowed: told from the bytes, without making the decision a string.
        let outcome =
            hit.decision.equals("allow", in: line) ? .allow : UsageReport.Row.Outcome(decision: try hit.decision.text(in: line) ?? "")
        // Appended to an empty string, a single value is taken as it is, with no copy.
        var key = ""
        for (index, dimension) in query.groupBy.enumerated() {
            if index > 0 { key.append("\u{1F}") }
            key.append(try UsageQuery.value(of: hit, dimension, in: line, hours: &hourNames))
        }
        hitsCounted += 1
        rows[rowNumber(key)].count(
            outcome, status: hit.status, latency: hit.latencyMicroseconds, upstream: hit.upstreamMicroseconds,
            bytesIn: hit.bytesIn, bytesOut: hit.bytesOut)
    }

    /// The place of a key's row: a new row's histograms are made only for a new key.
    mutating func rowNumber(_ key: String) -> Int {
        if let number = rowNumbers[key] { return number }
        rows.append(
            UsageReport.Row(
                key: query.groupBy.isEmpty ? [] : key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)))
        rowNumbers[key] = rows.count - 1
        return rows.count - 1
    }

    mutating func problem(_ problem: UsageReport.Problem) {
        if problem.truncated { truncatedLines += 1 } else { corruptLines += 1 }
        if problems.count < UsageReport.problemsKept { problems.append(problem) }
    }

    mutating func add(_ other: UsageTally) {
        for (key, number) in other.rowNumbers { rows[rowNumber(key)].add(other.rows[number]) }
        linesRead += other.linesRead
        hitsCounted += other.hitsCounted
        rolledUpHits += other.rolledUpHits
        rollupRows += other.rollupRows
        corruptLines += other.corruptLines
        truncatedLines += other.truncatedLines
        problems += other.problems
    }

    func report(files: [String]) -> UsageReport {
        var rows = rows
        for index in rows.indices { rows[index].settle() }
        var report = UsageReport(groupBy: query.groupBy, rows: rows.sorted { $0.key.lexicographicallyPrecedes($1.key) })
        report.linesRead = linesRead
        report.hitsCounted = hitsCounted
        report.rolledUpHits = rolledUpHits
        report.rollupRows = rollupRows
        report.corruptLines = corruptLines
        report.truncatedLines = truncatedLines
        report.problems = problems
        report.files = files
        return report
    }
}
