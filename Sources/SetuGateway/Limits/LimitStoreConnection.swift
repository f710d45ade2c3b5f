import NIOCore
import NIOPosix
import SetuHits
import SetuManifest

/// Who waits for Redis's answer about a request: a client connection of the same loop.
protocol LimitStoreRequester: AnyObject {
    /// The answer to the check asked with `token`: the script's reply, or nil when none
    /// came in time or the connection was lost (the plan's fail mode decides then).
    func limitsAnswered(_ reply: RESPValue?, token: Int)
}

/// One event loop's connection to the Redis that keeps shared plans: every request of the
/// loop that asks about an *exact* plan writes its script call here, and the replies come
/// back in order, on the same loop, to the client connections that asked (no thread hop,
/// no lock). Calls made while a batch of reads is handled go out in one write.
///
/// A call is never sent twice, so nothing is counted twice: one that gets no answer
/// within the timeout, or whose connection is lost, is decided by its plan's fail mode.
/// The connection is made again with back-off (100 ms doubling to 2 s); while it is down,
/// requests are decided at once. After a failover, or a restart of Redis, a script the
/// server no longer knows (`NOSCRIPT`, which means it did not run) is sent once in full.
// @unchecked: it is touched only on its event loop; the loop's timers hold it.
final class LimitStoreConnection: @unchecked Sendable {
    private enum State {
        case connecting
        case ready(any Channel)
        /// Waiting to connect again.
        case down
        case stopped
    }

    /// What a call was for.
    private enum Call {
        /// `AUTH`, `SELECT` or `PING`, sent first on every connection.
        case setup(String)
        case check(LimitCell, CompiledPlan, QuotaSlot?)
        case sync(LimitCell, CompiledPlan, QuotaSlot?, rate: Int64, since: Int64, quota: Int64)
    }

    private struct Waiting {
        var call: Call
        var requester: (any LimitStoreRequester)?
        var token: Int
        var sent: NIODeadline
        var fullScript = false
    }

    /// A quota period, as the keys and `EXPIREAT` name it.
    struct QuotaSlot {
        var index: Int64
        var name: String
        /// When the period ends, in seconds since 1970.
        var end: String
    }

    let eventLoop: any EventLoop
    private let shared: SharedLimits
    private var state = State.connecting
    private var waiting = CircularBuffer<Waiting>(initialCapacity: 64)
    /// Calls of `waiting` whose deadline has been dealt with, from its start.
    private var expired = 0
    private var outgoing: ByteBuffer
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private var syncTask: RepeatedTask?
    private var backoff: Int64 = 100
    private var reportedDown = false
    private var slots: [Plan.QuotaPeriod: QuotaSlot] = [:]
    private let timeout: TimeAmount
    /// A connection with a call unanswered for this long is given up and made again.
    private let stall: TimeAmount

    init(eventLoop: any EventLoop, shared: SharedLimits) {
        self.eventLoop = eventLoop
        self.shared = shared
        outgoing = ByteBufferAllocator().buffer(capacity: 4096)
        timeout = .milliseconds(Int64(shared.timeoutMilliseconds))
        stall = .milliseconds(max(2000, 10 * Int64(shared.timeoutMilliseconds)))
    }

    /// Connects; call on the loop. With `syncs`, this connection also sends every sync.
    func start(syncs: Bool) {
        connect()
        guard syncs else { return }
        let interval = TimeAmount.milliseconds(Int64(shared.syncIntervalMilliseconds))
        syncTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            sync()
        }
    }

    /// Closes the connection for good; waiting requests are decided by their fail mode.
    func stop() {
        syncTask?.cancel()
        syncTask = nil
        let channel: (any Channel)? = if case .ready(let channel) = state { channel } else { nil }
        state = .stopped
        channel?.close(promise: nil)
        failWaiting()
    }

    /// Whether Redis cannot be asked now: the connection is lost, or being made again after
    /// a loss. (Only while the first connection is made do requests wait for it.)
    var isDown: Bool {
        switch state {
        case .down, .stopped: true
        case .connecting: reportedDown
        case .ready: false
        }
    }

    // MARK: Calls

    /// Asks Redis to take one request of an *exact* plan; the answer goes to `requester`.
    /// - Returns: false when the connection is down: the plan's fail mode decides at once.
    func check(
        _ cell: LimitCell, plan: CompiledPlan, nowMilliseconds now: Int64, requester: any LimitStoreRequester, token: Int
    ) -> Bool {
        guard !isDown else { return false }
        let slot = plan.quotaPeriod.map { self.slot($0, nowMilliseconds: now) }
        send(Waiting(call: .check(cell, plan, slot), requester: requester, token: token, sent: .now()))
        return true
    }

    /// Sends what every cell counted since the last sync, and brings the cells up to date
    /// with the replies. While the connection is down the cells keep their counts.
    private func sync() {
        guard case .ready = state else { return }
        let now = HitLog.nowMilliseconds()
        for (cell, plan) in shared.takeUnsynced() {
            let rate = cell.unsyncedRate.exchange(0, ordering: .relaxed)
            let quota = cell.unsyncedQuota.exchange(0, ordering: .relaxed)
            guard rate > 0 else { continue }
            let since = cell.unsyncedSince.load(ordering: .relaxed)
            let slot = plan.quotaPeriod.map { self.slot($0, nowMilliseconds: now) }
            send(Waiting(call: .sync(cell, plan, slot, rate: rate, since: since, quota: quota), token: 0, sent: .now()))
        }
    }

    private func send(_ entry: Waiting) {
        write(entry.call, fullScript: entry.fullScript)
        waiting.append(entry)
        if timer == nil { armTimer(entry.sent + timeout) }
        guard case .ready = state, !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in flush() }
    }

    private func flush() {
        flushScheduled = false
        guard case .ready(let channel) = state, outgoing.readableBytes > 0 else { return }
        channel.writeAndFlush(outgoing, promise: nil)
        outgoing = channel.allocator.buffer(capacity: 4096)
    }

    /// The quota period containing `now`, made once per period.
    private func slot(_ kind: Plan.QuotaPeriod, nowMilliseconds now: Int64) -> QuotaSlot {
        let index = QuotaPeriod.index(kind, at: now)
        if let slot = slots[kind], slot.index == index { return slot }
        let slot = QuotaSlot(index: index, name: QuotaPeriod.name(of: index), end: String(QuotaPeriod.end(of: index) / 1000))
        slots[kind] = slot
        return slot
    }

    // MARK: Encoding

    private func write(_ call: Call, fullScript: Bool) {
        switch call {
        case .setup(let command):
            let words = command.split(separator: " ").map(String.init)
            RESPCommand.write(words, into: &outgoing)
        case .check(let cell, let plan, let slot):
            writeScript(.check, fullScript: fullScript, cell: cell, slot: slot, arguments: 4)
            outgoing.writeBulk(plan.storeInterval)
            outgoing.writeBulk(plan.storeBurst)
            outgoing.writeBulk(plan.storeQuota)
            outgoing.writeBulk(slot?.end ?? "0")
        case .sync(let cell, let plan, let slot, let rate, let since, let quota):
            writeScript(.sync, fullScript: fullScript, cell: cell, slot: slot, arguments: 5)
            outgoing.writeBulk(plan.storeInterval)
            outgoing.writeBulk(String(rate))
            outgoing.writeBulk(String(since))
            outgoing.writeBulk(String(quota))
            outgoing.writeBulk(slot?.end ?? "0")
        }
    }

    /// Writes `EVALSHA sha keys…` (or `EVAL source keys…`) and the count of the arguments
    /// that follow.
    private func writeScript(_ script: LimitScript, fullScript: Bool, cell: LimitCell, slot: QuotaSlot?, arguments: Int) {
        let keys = slot == nil ? 1 : 2
        outgoing.writeStaticString("*")
        outgoing.writeString(String(3 + keys + arguments))
        outgoing.writeStaticString("\r\n")
        outgoing.writeBulk(fullScript ? "EVAL" : "EVALSHA")
        outgoing.writeBulk(fullScript ? script.source : script.sha)
        outgoing.writeBulk(keys == 1 ? "1" : "2")
        outgoing.writeBulk(cell.storeKey, ":rate")
        if let slot { outgoing.writeBulk(cell.storeKey, ":quota:", slot.name) }
    }

    // MARK: Replies

    fileprivate func received(_ reply: RESPValue) {
        guard var entry = waiting.popFirst() else {
            // Redis speaks only when asked: this connection no longer matches its replies.
            closeChannel()
            return
        }
        if expired > 0 { expired -= 1 }
        switch entry.call {
        case .setup(let command):
            if case .error(let text) = reply {
                shared.logger.error("the limit store \(shared.address) refused \(command.split(separator: " ").first ?? ""): \(text)")
                closeChannel()
            } else if command == "PING" {
                reachable()
            }
        case .check, .sync:
            if case .error(let text) = reply, text.hasPrefix("NOSCRIPT"), !entry.fullScript {
                // The script did not run: send it whole, this once; a check whose request
                // was already decided without it is not sent again.
                entry.fullScript = true
                if case .check = entry.call, entry.requester == nil { return }
                send(entry)
                return
            }
            if case .error(let text) = reply {
                shared.logger.warning("the limit store \(shared.address) failed a script: \(text)")
            }
            if case .sync(let cell, let plan, let slot, _, _, _) = entry.call { cell.synced(reply, plan: plan, slot: slot) }
            if let requester = entry.requester {
                requester.limitsAnswered(reply, token: entry.token)
            }
        }
    }

    private func armTimer(_ deadline: NIODeadline) {
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            expire()
        }
    }

    /// Gives the requests that waited past the timeout to their fail mode, and gives up on
    /// a connection that answers nothing for long.
    private func expire() {
        let now = NIODeadline.now()
        if let first = waiting.first, first.sent + stall <= now {
            shared.logger.warning("the limit store \(shared.address) answered nothing for \(stall.nanoseconds / 1_000_000) ms: connecting again")
            closeChannel()
            return
        }
        var due: [(any LimitStoreRequester, Int)] = []
        var next: NIODeadline?
        while expired < waiting.count {
            let index = waiting.index(waiting.startIndex, offsetBy: expired)
            guard waiting[index].sent + timeout <= now else {
                next = waiting[index].sent + timeout
                break
            }
            if let requester = waiting[index].requester { due.append((requester, waiting[index].token)) }
            waiting[index].requester = nil
            expired += 1
        }
        if let next {
            armTimer(next)
        } else if let first = waiting.first {
            armTimer(first.sent + stall)
        }
        for (requester, token) in due { requester.limitsAnswered(nil, token: token) }
    }

    // MARK: Connecting

    private func connect() {
        state = .connecting
        let address = shared.address
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(1000))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LimitStoreHandler())
                }
            }
        bootstrap.connect(host: address.host, port: address.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard case .connecting = state, let handler = try? channel.pipeline.syncOperations.handler(type: LimitStoreHandler.self)
                else {
                    channel.close(promise: nil)
                    return
                }
                handler.connection = self
                connected(channel)
            case .failure(let error):
                guard case .connecting = state else { return }
                lost("\(error)")
            }
        }
    }

    private func connected(_ channel: any Channel) {
        // The setup calls go first on the wire, before what waited for the connection.
        let queued = outgoing
        outgoing = channel.allocator.buffer(capacity: 4096)
        var setup: [String] = []
        if let password = shared.address.password {
            setup.append(shared.address.username.map { "AUTH \($0) \(password)" } ?? "AUTH \(password)")
        }
        if shared.address.database != 0 { setup.append("SELECT \(shared.address.database)") }
        setup.append("PING")
        for command in setup.reversed() {
            waiting.prepend(Waiting(call: .setup(command), token: 0, sent: .now()))
        }
        for command in setup { write(.setup(command), fullScript: false) }
        outgoing.writeImmutableBuffer(queued)
        state = .ready(channel)
        flush()
    }

    fileprivate func channelClosed(_ reason: String) {
        guard case .ready = state else { return }
        lost(reason)
    }

    /// The connection is gone, or could not be made: what waited is decided by the fail
    /// modes, and a new connection is tried after the back-off.
    private func lost(_ reason: String) {
        state = .down
        failWaiting()
        if !reportedDown {
            reportedDown = true
            shared.connection(reachable: false, reason: reason)
        }
        let delay = backoff
        backoff = min(backoff * 2, 2000)
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { [self] in
            guard case .down = state else { return }
            connect()
        }
    }

    private func reachable() {
        backoff = 100
        guard reportedDown else { return }
        reportedDown = false
        shared.connection(reachable: true, reason: "")
    }

    private func closeChannel() {
        guard case .ready(let channel) = state else { return }
        channel.close(promise: nil)
        lost("closed by the gateway")
    }

    private func failWaiting() {
        let failed = waiting
        waiting.removeAll(keepingCapacity: true)
        expired = 0
        outgoing.clear()
        timer?.cancel()
        timer = nil
        for entry in failed {
            entry.requester?.limitsAnswered(nil, token: entry.token)
        }
    }
}

/// The last handler of a limit store connection: hands each reply to the connection.
private final class LimitStoreHandler: ChannelInboundHandler {
    typealias InboundIn = RESPValue

    var connection: LimitStoreConnection?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection?.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let connection = self.connection
        self.connection = nil
        connection?.channelClosed("the connection closed")
    }
}

extension ByteBuffer {
    /// Writes a RESP bulk string made of `parts`.
    fileprivate mutating func writeBulk(_ first: String, _ second: String = "", _ third: String = "") {
        writeStaticString("$")
        writeString(String(first.utf8.count + second.utf8.count + third.utf8.count))
        writeStaticString("\r\n")
        writeString(first)
        if !second.isEmpty { writeString(second) }
        if !third.isEmpty { writeString(third) }
        writeStaticString("\r\n")
    }
}
