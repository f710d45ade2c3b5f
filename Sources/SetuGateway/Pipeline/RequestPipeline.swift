import NIOCore
import SetuHits

/// The steps of DESIGN.md §7, in order. `admit` judges a request by its head: request id,
/// framing and limits, route, authenticate, authorize. `release` runs once the body is
/// there to judge (read whole when a stage needs it), before the upstream sees anything:
/// consent, the plan's limits and request validation; when the limits are asked of the
/// shared store, the rest runs when its answer comes (`resume`). Each step is its own
/// stage over the exchange; the first that refuses throws the problem to answer. What
/// passes goes to the proxy stage.
enum RequestPipeline {
    /// Runs the stages on a request that has just arrived.
    /// - Throws: the refusal of the first stage that refuses.
    static func admit(
        _ exchange: Exchange, configuration: GatewayConfiguration, random: inout RequestIdentityStage.Random,
        tokens: ConsentTokenCache?
    ) throws(ProblemDetails) {
        RequestIdentityStage.run(exchange, random: &random)
        try FramingStage.run(exchange, limits: configuration)
        // The portal's reserved paths are answered as pages: nothing to route or authenticate.
        if configuration.servesPortal, exchange.path == "/-" || exchange.path.hasPrefix("/-/") {
            guard exchange.table != nil else { throw .notReady() }
            exchange.portal = true
            return
        }
        try RouteStage.run(exchange)
        try AuthenticateStage.run(exchange, tokens: tokens)
        try AuthorizeStage.run(exchange)
    }

    /// Runs the stages that come before the proxy, once the request is ready to go:
    /// consent, the plan's limits, then request validation; or consent alone when the
    /// limits wait for the shared store, whose answer goes to `requester` (which then
    /// calls `resume`).
    /// - Throws: the refusal of the first stage that refuses.
    static func release(
        _ exchange: Exchange, body: RequestBody, ledger: ConsentLedger, loop: GatewayLoop, requester: any LimitStoreRequester,
        token: Int
    ) throws(ProblemDetails) -> LimitStage.Outcome {
        let now = HitLog.nowMicroseconds()
        try ConsentStage.run(exchange, body: body, ledger: ledger, nowMilliseconds: now / 1000)
        let outcome = try LimitStage.run(
            exchange, store: loop.limits, shared: loop.gateway.sharedLimits, requester: requester, token: token, nowMicroseconds: now)
        if outcome == .decided { try ValidationStage.run(exchange, body: body) }
        return outcome
    }

    /// Finishes `release` with the shared store's reply about the plan's limits (nil: none
    /// came), then validates the request.
    /// - Throws: the refusal of the first stage that refuses.
    static func resume(_ exchange: Exchange, body: RequestBody, reply: RESPValue?, shared: SharedLimits) throws(ProblemDetails) {
        try LimitStage.answered(exchange, reply: reply, shared: shared, nowMicroseconds: HitLog.nowMicroseconds())
        try ValidationStage.run(exchange, body: body)
    }
}
