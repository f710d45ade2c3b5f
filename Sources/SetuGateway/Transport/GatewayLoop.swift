import NIOCore
import NIOSSL
import SetuFormats
import SetuHits

/// What one event loop keeps for the connections it serves: its pool of upstream
/// connections, the client connections whose deadlines it checks, and the `Date` its own
/// answers carry. Used only on its loop, so none of it needs a lock.
// @unchecked: the gateway keeps each in a locked map only to hand it to the connections
// of its own loop, which alone touch it.
final class GatewayLoop: @unchecked Sendable {
    let eventLoop: any EventLoop
    let gateway: Gateway
    let pool: UpstreamPool
    let recorder: HitRecorder
    /// The connection to the shared store of plans, when the gateway has one.
    let limits: LimitStoreConnection?
    /// Makes the request ids of this loop's requests.
    var random = RequestIdentityStage.Random()
    /// Bearer tokens verified on this loop, until their `exp`.
    let tokens = ConsentTokenCache()
    /// `Date` for the gateway's own answers (RFC 9110 §6.6.1), refreshed every tick.
    private(set) var date: String
    private var clients: [ClientConnectionHandler] = []
    private var ticker: RepeatedTask?
    private var dateSecond: Int64 = 0

    /// How often deadlines are checked: the precision of every timeout.
    static let tick = TimeAmount.milliseconds(100)

    init(eventLoop: any EventLoop, gateway: Gateway, tls: NIOSSLContext) {
        self.eventLoop = eventLoop
        self.gateway = gateway
        pool = UpstreamPool(eventLoop: eventLoop, configuration: gateway.configuration, tls: tls)
        recorder = HitRecorder(log: gateway.hits, metrics: gateway.metrics)
        limits = gateway.sharedLimits.map { LimitStoreConnection(eventLoop: eventLoop, shared: $0) }
        date = ""
        refreshDate()
    }

    /// Starts checking deadlines, and connects to the shared store; call on the loop.
    func start() {
        guard ticker == nil else { return }
        limits?.start(syncs: gateway.claimSync())
        ticker = eventLoop.scheduleRepeatedTask(initialDelay: Self.tick, delay: Self.tick) { [self] _ in
            sweep()
        }
    }

    /// Stops checking deadlines, and closes the idle upstream connections and the store's.
    func stop() {
        ticker?.cancel()
        ticker = nil
        limits?.stop()
        pool.shutdown()
    }

    func register(_ client: ClientConnectionHandler) {
        guard client.sweepIndex < 0 else { return }
        client.sweepIndex = clients.count
        clients.append(client)
    }

    func unregister(_ client: ClientConnectionHandler) {
        let index = client.sweepIndex
        guard index >= 0, index < clients.count, clients[index] === client else { return }
        let last = clients.removeLast()
        if index < clients.count {
            clients[index] = last
            last.sweepIndex = index
        }
        client.sweepIndex = -1
    }

    private var cachedTable: RoutingTable?
    private var cachedInstall = -1

    /// The routing table in force, reread from the gateway only after an install.
    var table: RoutingTable? {
        let installs = gateway.installCount
        if installs != cachedInstall {
            cachedTable = gateway.table
            cachedInstall = installs
            // A new table may hold new keys, or lack a removed one.
            tokens.removeAll()
        }
        return cachedTable
    }

    private func sweep() {
        let now = NIODeadline.now()
        refreshDate()
        var expired: [ClientConnectionHandler] = []
        for client in clients where client.deadline <= now { expired.append(client) }
        // Acted on after the walk: each may close its connection, which unregisters it.
        for client in expired { client.deadlinePassed() }
        pool.sweep(now: now)
    }

    private func refreshDate() {
        let now = HitLog.nowMilliseconds() / 1000
        guard now != dateSecond else { return }
        dateSecond = now
        date = Timestamp.httpDate(seconds: now)
    }
}
