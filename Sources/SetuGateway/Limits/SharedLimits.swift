import Logging
import SetuHits
import Synchronization

/// A Redis server that keeps plans' counts for every replica: `redis://[[user]:password@]host[:port][/db]`.
public struct LimitStoreAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// The database number `SELECT`ed on each connection.
    public var database: Int
    public var username: String?
    public var password: String?

    /// Reads a `redis://` URL.
    /// - Throws: what is wrong with it.
    public init(url: String) throws(LimitStoreAddressError) {
        guard url.hasPrefix("redis://") else {
            throw LimitStoreAddressError(message: "'\(url)' is not a redis:// URL, e.g. redis://127.0.0.1:6379/0")
        }
        var rest = Substring(url.dropFirst("redis://".count))
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var hostPart = rest
        port = 6379
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else {
                throw LimitStoreAddressError(message: "'\(url)' has an IPv6 host without its closing ]")
            }
            let after = hostPart[hostPart.index(after: close)...]
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else {
                    throw LimitStoreAddressError(message: "'\(url)' has a port that is not a number from 1 to 65535")
                }
                port = number
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            guard let number = Int(hostPart[hostPart.index(after: colon)...]), (1...65535).contains(number) else {
                throw LimitStoreAddressError(message: "'\(url)' has a port that is not a number from 1 to 65535")
            }
            port = number
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw LimitStoreAddressError(message: "'\(url)' names no host, e.g. redis://127.0.0.1:6379") }
        host = String(hostPart)
        if path.isEmpty {
            database = 0
        } else {
            guard let number = Int(path), number >= 0 else {
                throw LimitStoreAddressError(message: "'\(url)' has a database '\(path)' that is not a number, e.g. redis://127.0.0.1:6379/0")
            }
            database = number
        }
    }

    /// The URL without its password, for logs and messages.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(credentials)\(shownHost):\(port)/\(database)"
    }
}

/// Why a `--limits` URL cannot be used.
public struct LimitStoreAddressError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Plans kept in Redis, shared by every replica that points at the same server
/// (`setu serve --limits redis://…`): what the event loops' connections share.
///
/// Each event loop has its own connection (`LimitStoreConnection`). *Exact* plans ask it
/// on every request; *batched* plans count in the process's cells, which are sent to Redis
/// and brought up to date from it every `syncInterval`.
public final class SharedLimits: Sendable {
    public let address: LimitStoreAddress
    /// How long a request waits for Redis before its plan's fail mode decides it.
    public let timeoutMilliseconds: Int
    /// How often counts are synced.
    public let syncIntervalMilliseconds: Int
    let logger: Logger
    let metrics: GatewayMetrics
    /// Cells with requests not yet told to Redis, with the plan they were counted under.
    private let unsynced = Mutex<[(LimitCell, CompiledPlan)]>([])
    /// Connections that cannot reach Redis now, of those that tried.
    private let down = Mutex<Int>(0)

    /// - Parameters:
    ///   - timeoutMilliseconds: 100 ms unless given.
    ///   - syncIntervalMilliseconds: 250 ms unless given.
    public init(
        address: LimitStoreAddress, timeoutMilliseconds: Int = 100, syncIntervalMilliseconds: Int = 250, metrics: GatewayMetrics,
        logger: Logger = Logger(label: "setu.limits")
    ) {
        self.address = address
        self.timeoutMilliseconds = timeoutMilliseconds
        self.syncIntervalMilliseconds = syncIntervalMilliseconds
        self.metrics = metrics
        self.logger = logger
        metrics.limitStore(up: true)
    }

    /// Whether every connection that tried reaches Redis.
    public var reachable: Bool { down.withLock { $0 == 0 } }

    /// Notes that one cell counted a request not yet told to Redis; the first such
    /// request since the last sync puts the cell in the next sync.
    func noteUnsynced(_ cell: LimitCell, plan: CompiledPlan, quota: Bool, nowMicroseconds now: Int64) {
        if quota { cell.unsyncedQuota.add(1, ordering: .relaxed) }
        guard cell.unsyncedRate.add(1, ordering: .relaxed).oldValue == 0 else { return }
        cell.unsyncedSince.store(now, ordering: .relaxed)
        unsynced.withLock { $0.append((cell, plan)) }
    }

    /// The cells to sync now; the list starts afresh.
    func takeUnsynced() -> [(LimitCell, CompiledPlan)] {
        unsynced.withLock { list in
            defer { list = [] }
            return list
        }
    }

    /// Puts cells whose sync could not be sent back in the list.
    func returnUnsynced(_ cells: [(LimitCell, CompiledPlan)]) {
        guard !cells.isEmpty else { return }
        unsynced.withLock { $0.append(contentsOf: cells) }
    }

    /// A connection lost Redis, or found it again; the first loss and the last recovery
    /// are logged and shown in `/metrics`.
    func connection(reachable: Bool, reason: String) {
        let (before, after) = down.withLock { count in
            let before = count
            count = max(0, count + (reachable ? -1 : 1))
            return (before, count)
        }
        if before == 0 && after > 0 {
            logger.warning(
                "the limit store \(address) cannot be reached (\(reason)): plans with failMode open are limited by each replica's own counts, those with failMode closed are refused with 503 limits-unavailable; reconnecting"
            )
            metrics.limitStore(up: false)
        } else if before > 0 && after == 0 {
            logger.notice("the limit store \(address) is reachable again: plans are counted in it once more")
            metrics.limitStore(up: true)
        }
    }

    /// Counts a request its plan's fail mode decided, as Redis could not.
    func decidedLocally(failMode: String) {
        metrics.limitFallback(failMode: failMode)
    }
}
