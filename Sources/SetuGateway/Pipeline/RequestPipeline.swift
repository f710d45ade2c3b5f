import NIOCore
import SetuHits

/// The steps of DESIGN.md §7, in order. `admit` judges a request by its head: request id,
/// framing and limits, route, authenticate, authorize. `release` runs once the body is
/// there to judge (read whole when a stage needs it), before the upstream sees anything:
/// consent, the plan's limits and request validation. Each step is its own stage over the exchange; the first that refuses
/// throws the problem to answer. What passes goes to the proxy stage.
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

    /// Runs the stages that come before the proxy, once the request is ready to go.
    /// - Throws: the refusal of the first stage that refuses.
    /// - Parameter body: the body, when it was read whole.
    static func release(_ exchange: Exchange, body: ByteBuffer?, ledger: ConsentLedger) throws(ProblemDetails) {
        let now = HitLog.nowMicroseconds()
        let body = RequestBody(body)
        try ConsentStage.run(exchange, body: body, ledger: ledger, nowMilliseconds: now / 1000)
        try LimitStage.run(exchange, nowMicroseconds: now)
        try ValidationStage.run(exchange, body: body)
    }
}
