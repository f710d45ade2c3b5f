import SetuHits

/// Step 7 of the pipeline: the plan's rate limit (GCRA per consumer and API) and its quota
/// (per UTC day or month). Every answer under a limited plan carries `RateLimit-Policy` and
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10); a refusal is 429 with `Retry-After`.
///
/// The counts are the process's own, unless `setu serve --limits` shares them through
/// Redis: then an *exact* plan asks Redis (the stage answers `.asked`, and `answered`
/// finishes it when the reply is in), and a *batched* plan counts here and is synced.
enum LimitStage {
    /// Whether the stage decided, or waits for the store.
    enum Outcome {
        case decided
        /// The store was asked; `answered` gets its reply.
        case asked
    }

    static func run(
        _ exchange: Exchange, store: LimitStoreConnection?, shared: SharedLimits?, requester: any LimitStoreRequester, token: Int,
        nowMicroseconds now: Int64
    ) throws(ProblemDetails) -> Outcome {
        guard let granted = exchange.granted, let plan = granted.plan, let cell = granted.cell else { return .decided }
        guard let store, let shared else {
            let (rate, quota) = take(cell, plan: plan, nowMicroseconds: now)
            try apply(exchange, plan: plan, rate: rate, quota: quota)
            return .decided
        }
        switch plan.precision {
        case .exact:
            if store.check(cell, plan: plan, nowMilliseconds: now / 1000, requester: requester, token: token) { return .asked }
            // Nothing was sent: what this replica counts now is sent at the next sync.
            try decideWithoutStore(exchange, shared: shared, nowMicroseconds: now, unsent: true)
        case .batched:
            if store.isDown && plan.failMode == .closed {
                shared.decidedLocally(failMode: "closed")
                throw .limitsUnavailable(api: granted.entitlement.api, plan: plan.name)
            }
            if store.isDown { shared.decidedLocally(failMode: "open") }
            let (rate, quota) = take(cell, plan: plan, nowMicroseconds: now)
            if rate.allowed { shared.noteUnsynced(cell, plan: plan, quota: quota?.allowed ?? false, nowMicroseconds: now) }
            try apply(exchange, plan: plan, rate: rate, quota: quota)
        }
        return .decided
    }

    /// Finishes the stage with the store's reply to an *exact* check, or without one (nil):
    /// no answer in time, or the connection lost, leaves it to the plan's fail mode.
    static func answered(_ exchange: Exchange, reply: RESPValue?, shared: SharedLimits, nowMicroseconds now: Int64) throws(ProblemDetails) {
        guard let granted = exchange.granted, let plan = granted.plan, let cell = granted.cell else { return }
        guard case .array(let values?) = reply, values.count == 6 else {
            // The call went out and may have been counted: it is not sent again.
            try decideWithoutStore(exchange, shared: shared, nowMicroseconds: now, unsent: false)
            return
        }
        let numbers = values.compactMap(\.integer)
        guard numbers.count == 6 else {
            try decideWithoutStore(exchange, shared: shared, nowMicroseconds: now, unsent: false)
            return
        }
        let rate = LimitCell.RateCheck(allowed: numbers[0] == 1, remaining: numbers[1], wait: numbers[2])
        var quota: LimitCell.QuotaCheck?
        var period: Int64?
        if rate.allowed, let limit = plan.quota, let kind = plan.quotaPeriod, numbers[3] >= 0 {
            let milliseconds = now / 1000
            let index = QuotaPeriod.index(kind, at: milliseconds)
            period = index
            let allowed = numbers[4] == 1
            quota = LimitCell.QuotaCheck(
                allowed: allowed, remaining: allowed ? max(0, limit - numbers[3]) : 0, reset: QuotaPeriod.end(of: index) - milliseconds)
        }
        cell.mirror(
            arrival: numbers[5], interval: plan.interval, pendingRate: 0, used: period == nil ? nil : numbers[3], period: period,
            pendingQuota: 0)
        try apply(exchange, plan: plan, rate: rate, quota: quota)
    }

    /// Decides as the plan's fail mode says when the store cannot: refused with 503
    /// (closed), or by this replica's own counts (open), which are sent to the store once it
    /// is back when the request was never sent to it.
    private static func decideWithoutStore(
        _ exchange: Exchange, shared: SharedLimits, nowMicroseconds now: Int64, unsent: Bool
    ) throws(ProblemDetails) {
        guard let granted = exchange.granted, let plan = granted.plan, let cell = granted.cell else { return }
        guard plan.failMode == .open else {
            shared.decidedLocally(failMode: "closed")
            throw .limitsUnavailable(api: granted.entitlement.api, plan: plan.name)
        }
        shared.decidedLocally(failMode: "open")
        let (rate, quota) = take(cell, plan: plan, nowMicroseconds: now)
        if unsent && rate.allowed { shared.noteUnsynced(cell, plan: plan, quota: quota?.allowed ?? false, nowMicroseconds: now) }
        try apply(exchange, plan: plan, rate: rate, quota: quota)
    }

    /// Takes one request from the cell's rate limit and, when that allows it, its quota.
    private static func take(
        _ cell: LimitCell, plan: CompiledPlan, nowMicroseconds now: Int64
    ) -> (rate: LimitCell.RateCheck, quota: LimitCell.QuotaCheck?) {
        let rate = cell.takeRate(plan, nowMicroseconds: now)
        guard rate.allowed, let quota = plan.quota, let period = plan.quotaPeriod else { return (rate, nil) }
        return (rate, cell.takeQuota(quota, period: period, nowMilliseconds: now / 1000))
    }

    /// States the limits in the answer's headers, and refuses a request over them.
    private static func apply(
        _ exchange: Exchange, plan: CompiledPlan, rate: LimitCell.RateCheck, quota: LimitCell.QuotaCheck?
    ) throws(ProblemDetails) {
        guard let granted = exchange.granted else { return }
        var state = "\"rate\";r=\(rate.remaining);t=\(seconds(rate.wait, per: 1_000_000))"
        if let quota { state += ", \"quota\";r=\(quota.remaining);t=\(seconds(quota.reset, per: 1000))" }
        exchange.responseHeaders.append(("RateLimit-Policy", plan.policyHeader))
        exchange.responseHeaders.append(("RateLimit", state))
        let api = granted.entitlement.api
        if !rate.allowed {
            throw .rateLimited(api: api, plan: plan.name, retryAfter: seconds(rate.wait, per: 1_000_000))
        }
        if let quota, !quota.allowed {
            throw .quotaExhausted(api: api, plan: plan, retryAfter: seconds(quota.reset, per: 1000))
        }
    }

    /// Whole seconds, rounded up, of a span in `unit`s per second: at least 1 for any wait.
    private static func seconds(_ span: Int64, per unit: Int64) -> Int64 {
        span <= 0 ? 0 : (span + unit - 1) / unit
    }
}
