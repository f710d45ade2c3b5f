import Foundation
import SetuFormats
import SetuHits
import SetuManifest
import SetuStorage
import Synchronization

/// A plan's limits in the units the request path counts in, with the header that states
/// them made once, when the routing table is compiled.
struct CompiledPlan: Sendable {
    let name: String
    /// GCRA's emission interval: microseconds between requests at the plan's rate.
    let interval: Int64
    /// Requests that may arrive at once.
    let burst: Int64
    /// Requests per quota period, when the plan has a quota.
    let quota: Int64?
    let quotaPeriod: Plan.QuotaPeriod?
    /// The `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers-10 §5).
    let policyHeader: String
    /// How replicas sharing a store hold the plan, and what they do without it.
    let precision: Plan.Precision
    let failMode: Plan.FailMode
    /// The interval, burst and quota as the store's scripts are given them.
    let storeInterval: String
    let storeBurst: String
    let storeQuota: String

    init(_ plan: Plan) {
        name = plan.name
        let period: Int64 =
            switch plan.per {
            case .second: 1_000_000
            case .minute: 60_000_000
            case .hour: 3_600_000_000
            }
        interval = max(1, period / Int64(max(plan.requests, 1)))
        // A plan without a burst lets a whole period's requests come at once. The bucket's
        // capacity (burst × interval) stays far from Int64's end, so GCRA's sums cannot trap.
        burst = min(Int64(max(plan.burst ?? plan.requests, 1)), Int64.max / 4 / interval)
        // The quota's count has 40 bits in its cell: a larger quota is never reached anyway.
        quota = plan.quotaRequests.map { min(Int64($0), LimitCell.largestCount) }
        quotaPeriod = plan.quotaPer
        // The rate policy's window is the time an empty bucket takes to fill again.
        var header = "\"rate\";q=\(burst);w=\(max(1, (burst * interval + 999_999) / 1_000_000))"
        if let quota, let quotaPeriod {
            header += ", \"quota\";q=\(quota);w=\(quotaPeriod == .day ? 86_400 : 2_592_000)"
        }
        policyHeader = header
        precision = plan.precision
        failMode = plan.failMode
        storeInterval = String(interval)
        storeBurst = String(burst)
        storeQuota = String(quota ?? 0)
    }
}

/// A quota period: a UTC day or month, as one number that orders them and tells them apart.
enum QuotaPeriod {
    /// Months are numbered above every day number, so the two kinds never collide.
    private static let monthBase: Int64 = 1 << 22

    /// The period containing `milliseconds` (since 1970, UTC).
    static func index(_ kind: Plan.QuotaPeriod, at milliseconds: Int64) -> Int64 {
        let day = milliseconds / 86_400_000
        guard kind == .month else { return day }
        let (year, month, _) = Timestamp.civil(daysSinceEpoch: day)
        return monthBase + (year - 1970) * 12 + (month - 1)
    }

    /// When the period ends, in milliseconds since 1970.
    static func end(of index: Int64) -> Int64 {
        guard index >= monthBase else { return (index + 1) * 86_400_000 }
        let months = index - monthBase + 1
        return Timestamp.daysSinceEpoch(year: 1970 + months / 12, month: months % 12 + 1, day: 1) * 86_400_000
    }

    /// `2026-12-03` for a day, `2026-12` for a month.
    static func name(of index: Int64) -> String {
        guard index >= monthBase else { return Timestamp.day(daysSinceEpoch: index) }
        let months = index - monthBase
        let month = months % 12 + 1
        return "\(1970 + months / 12)-\(month < 10 ? "0" : "")\(month)"
    }

    /// The index of a name `name(of:)` wrote.
    static func index(named name: String) -> Int64? {
        if name.utf8.count == 10 { return Timestamp.daysSinceEpoch(of: name) }
        let parts = name.split(separator: "-")
        guard name.utf8.count == 7, parts.count == 2, let year = Int64(parts[0]), let month = Int64(parts[1]),
            (1...12).contains(month), year >= 1970
        else { return nil }
        return monthBase + (year - 1970) * 12 + month - 1
    }
}

/// What one consumer has used of one API's plan: GCRA's theoretical arrival time and the
/// quota's count. Updated with compare-and-swap, so requests on every event loop share one
/// limit without a lock.
///
/// With a shared store, the cell also holds what it counted since its last sync, and it
/// mirrors what the store last said, so that its own counts are close to the store's when
/// a plan's fail mode hands the limits to them.
final class LimitCell: Sendable {
    let consumer: String
    let api: String
    /// GCRA's theoretical arrival time, in microseconds since 1970.
    let arrival = Atomic<Int64>(0)
    /// The quota period (above bit 40) and the requests counted in it (below).
    let quota = Atomic<Int64>(0)
    /// The prefix of the cell's keys in the shared store: `setu:{consumer}:api`. The braces
    /// keep a consumer's keys in one slot of a Redis Cluster.
    let storeKey: String
    /// Requests admitted, and quota requests counted, since the last sync with the store,
    /// and when the first of them came (microseconds since 1970).
    let unsyncedRate = Atomic<Int64>(0)
    let unsyncedQuota = Atomic<Int64>(0)
    let unsyncedSince = Atomic<Int64>(0)

    private static let countBits: Int64 = 40
    private static let countMask: Int64 = (1 << countBits) - 1
    /// The most a quota cell can count.
    static let largestCount = countMask

    init(consumer: String, api: String) {
        self.consumer = consumer
        self.api = api
        storeKey = "setu:{\(consumer)}:\(api)"
    }

    /// Takes what the store said after a check or a sync: the theoretical arrival time, and
    /// the quota's count in `period` (when the plan has a quota), each with what this cell
    /// counted since (`pendingRate` requests of `interval` µs, `pendingQuota` quota requests).
    func mirror(arrival stored: Int64, interval: Int64, pendingRate: Int64, used: Int64?, period: Int64?, pendingQuota: Int64) {
        let target = stored + pendingRate * interval
        var current = arrival.load(ordering: .relaxed)
        while current < target {
            let (exchanged, found) = arrival.compareExchange(expected: current, desired: target, ordering: .relaxed)
            if exchanged { break }
            current = found
        }
        guard let used, let period, used >= 0 else { return }
        quota.store(Self.pack(period: period, used: min(used + pendingQuota, Self.largestCount)), ordering: .relaxed)
    }

    /// Takes a sync's reply: `{arrival, used}`.
    func synced(_ reply: RESPValue, plan: CompiledPlan, slot: LimitStoreConnection.QuotaSlot?) {
        guard case .array(let values?) = reply, values.count == 2, let stored = values[0].integer, let used = values[1].integer
        else { return }
        mirror(
            arrival: stored, interval: plan.interval, pendingRate: unsyncedRate.load(ordering: .relaxed), used: used,
            period: slot?.index, pendingQuota: unsyncedQuota.load(ordering: .relaxed))
    }

    static func pack(period: Int64, used: Int64) -> Int64 { period << countBits | (used & countMask) }
    static func unpack(_ packed: Int64) -> (period: Int64, used: Int64) { (packed >> countBits, packed & countMask) }

    /// What a rate limit check found.
    struct RateCheck {
        var allowed: Bool
        /// Requests that may still come at once.
        var remaining: Int64
        /// Microseconds until the bucket is full again, or, when refused, until the next request may come.
        var wait: Int64
    }

    /// Takes one request from the bucket, if it holds one (GCRA, as in RFC 2697's
    /// virtual-scheduling form).
    func takeRate(_ plan: CompiledPlan, nowMicroseconds now: Int64) -> RateCheck {
        let capacity = plan.burst * plan.interval
        var arrival = self.arrival.load(ordering: .relaxed)
        while true {
            let next = max(arrival, now) + plan.interval
            if next - now > capacity {
                return RateCheck(allowed: false, remaining: 0, wait: next - capacity - now)
            }
            let (exchanged, found) = self.arrival.compareExchange(expected: arrival, desired: next, ordering: .relaxed)
            if exchanged {
                return RateCheck(allowed: true, remaining: (capacity - (next - now)) / plan.interval, wait: next - now)
            }
            arrival = found
        }
    }

    /// What a quota check found.
    struct QuotaCheck {
        var allowed: Bool
        var remaining: Int64
        /// Milliseconds until the period ends.
        var reset: Int64
    }

    /// Counts one request against the quota, unless the period's quota is used up.
    func takeQuota(_ limit: Int64, period kind: Plan.QuotaPeriod, nowMilliseconds now: Int64) -> QuotaCheck {
        let period = QuotaPeriod.index(kind, at: now)
        let reset = QuotaPeriod.end(of: period) - now
        var packed = quota.load(ordering: .relaxed)
        while true {
            let (counted, used) = Self.unpack(packed)
            let current = counted == period ? used : 0
            if current >= limit { return QuotaCheck(allowed: false, remaining: 0, reset: reset) }
            let (exchanged, found) = quota.compareExchange(
                expected: packed, desired: Self.pack(period: period, used: current + 1),
                ordering: .relaxed)
            if exchanged { return QuotaCheck(allowed: true, remaining: limit - current - 1, reset: reset) }
            packed = found
        }
    }
}

/// Quota use of one consumer on one API, as `/status`, `setu status` and the state file show it.
public struct QuotaUse: Codable, Sendable, Equatable {
    public var consumer: String
    public var api: String
    /// `2026-12-03` for a daily quota, `2026-12` for a monthly one.
    public var period: String
    public var used: Int64
    /// The plan's quota in force, when the gateway knows it.
    public var limit: Int64?

    public init(consumer: String, api: String, period: String, used: Int64, limit: Int64?) {
        self.consumer = consumer
        self.api = api
        self.period = period
        self.used = used
        self.limit = limit
    }
}

/// The counters of every (consumer, API) the gateway limits, kept across reconciles so that
/// a plan's change applies new limits without resetting what was used, and written to a
/// file in the state directory so that a restart restores the quotas.
///
/// A cell is looked up under the lock only when a routing table is compiled; requests use
/// the cells the table holds, with atomic operations alone.
public final class PlanCounters: Sendable {
    struct Key: Hashable {
        var consumer: String
        var api: String
    }

    /// Where quotas are kept between runs; nil keeps them in memory only.
    public let file: String?
    private let cells = Mutex<[Key: LimitCell]>([:])
    /// The last text written, so an unchanged state is not written again.
    private let written = Mutex<String>("")

    /// - Parameter file: the state file, read now when it exists.
    /// - Throws: `GatewayError` when the file exists but is not a quota file.
    public init(file: String?) throws {
        self.file = file
        guard let file, FileManager.default.fileExists(atPath: file) else { return }
        let state: StateFile
        do {
            state = try JSONDecoder().decode(StateFile.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw GatewayError(message: "cannot read the quota state in \(file): \(error); move it aside to start the quotas afresh")
        }
        cells.withLock { cells in
            for use in state.quotas {
                guard let period = QuotaPeriod.index(named: use.period) else { continue }
                let cell = LimitCell(consumer: use.consumer, api: use.api)
                cell.quota.store(LimitCell.pack(period: period, used: use.used), ordering: .relaxed)
                cells[Key(consumer: use.consumer, api: use.api)] = cell
            }
        }
    }

    /// The cell of a consumer on an API, made when it has none.
    func cell(consumer: String, api: String) -> LimitCell {
        cells.withLock { cells in
            let key = Key(consumer: consumer, api: api)
            if let cell = cells[key] { return cell }
            let cell = LimitCell(consumer: consumer, api: api)
            cells[key] = cell
            return cell
        }
    }

    /// Forgets the cells of entitlements no longer in force whose quota period has ended
    /// and whose rate bucket is full again: what they held no longer limits anyone.
    func prune(keeping kept: Set<Key>, nowMilliseconds now: Int64) {
        cells.withLock { cells in
            cells = cells.filter { key, cell in
                if kept.contains(key) { return true }
                let (period, used) = LimitCell.unpack(cell.quota.load(ordering: .relaxed))
                let quotaLive = used > 0 && QuotaPeriod.end(of: period) > now
                return quotaLive || cell.arrival.load(ordering: .relaxed) > now * 1000
            }
        }
    }

    /// Quota use in the current period of every cell that counted any, sorted by consumer and API.
    public func usage(
        nowMilliseconds now: Int64 = HitLog.nowMilliseconds(),
        limits: (String, String) -> (Int64, Plan.QuotaPeriod)? = { _, _ in nil }
    ) -> [QuotaUse] {
        let all = cells.withLock { Array($0.values) }
        var uses: [QuotaUse] = []
        for cell in all {
            let (period, used) = LimitCell.unpack(cell.quota.load(ordering: .relaxed))
            guard used > 0, QuotaPeriod.end(of: period) > now else { continue }
            let limit = limits(cell.consumer, cell.api)
            uses.append(
                QuotaUse(
                    consumer: cell.consumer, api: cell.api, period: QuotaPeriod.name(of: period), used: used,
                    limit: limit?.0))
        }
        return uses.sorted { ($0.consumer, $0.api) < ($1.consumer, $1.api) }
    }

    /// Writes the quotas to the state file when they changed since the last write
    /// (`AtomicFile.replace`).
    /// - Parameter limits: the quota in force for a consumer and an API, written beside its use.
    /// - Throws: the file system's error.
    public func save(limits: (String, String) -> (Int64, Plan.QuotaPeriod)? = { _, _ in nil }) throws {
        guard let file else { return }
        let state = StateFile(version: 1, quotas: usage(limits: limits))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(state)
        let text = String(decoding: data, as: UTF8.self)
        guard written.withLock({ $0 != text }) else { return }
        try AtomicFile.replace(file, with: [UInt8](data))
        written.withLock { $0 = text }
    }

    /// Reads a quota state file, for commands that show quota use without a running gateway.
    public static func read(_ file: String) throws -> [QuotaUse] {
        try JSONDecoder().decode(StateFile.self, from: Data(contentsOf: URL(fileURLWithPath: file))).quotas
    }

    /// The file's form: `{"version": 1, "quotas": [{consumer, api, period, used, limit}]}`.
    struct StateFile: Codable {
        var version: Int
        var quotas: [QuotaUse]
    }
}
