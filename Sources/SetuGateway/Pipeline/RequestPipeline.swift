/// The steps of DESIGN.md §7 that judge a request by its head, in order: request id,
/// framing and limits, route, authenticate, authorize. Each is its own stage over the
/// exchange; the first that refuses throws the problem to answer. What passes goes to the
/// proxy stage.
enum RequestPipeline {
    /// Runs the stages on a request that has just arrived.
    /// - Throws: the refusal of the first stage that refuses.
    static func admit(_ exchange: Exchange, configuration: GatewayConfiguration,
                      random: inout RequestIdentityStage.Random) throws(Problem) {
        RequestIdentityStage.run(exchange, random: &random)
        try FramingStage.run(exchange, limits: configuration)
        try RouteStage.run(exchange)
        try AuthenticateStage.run(exchange)
        try AuthorizeStage.run(exchange)
    }
}
