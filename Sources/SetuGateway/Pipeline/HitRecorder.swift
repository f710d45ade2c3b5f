import SetuHits

/// The one place a hit record is made and recorded: once per request, after its answer
/// was sent or the connection ended, from what the stages found out and how it ended.
/// One per event loop, which keeps the metric series it has used, so that counting a
/// request takes no lock shared with the other loops.
final class HitRecorder {
    let log: HitLog
    let metrics: GatewayMetrics
    private var series: [GatewayMetrics.RequestKey: GatewayMetrics.RequestSeries] = [:]

    init(log: HitLog, metrics: GatewayMetrics) {
        self.log = log
        self.metrics = metrics
    }

    /// How a request ended.
    struct Outcome {
        /// The status sent, or 499 when the client left before an answer began.
        var status: Int
        /// `allow`, `deny:<reason>` or `error:<reason>`.
        var decision: String
        /// From arrival until the answer was handed to the connection, in milliseconds.
        var latencyMilliseconds: Double
        /// From sending to the upstream until its answer ended, when it was proxied.
        var upstreamMilliseconds: Double?
        /// Request body bytes received.
        var bytesIn: Int
        /// Response body bytes sent.
        var bytesOut: Int
    }

    func record(_ exchange: Exchange, _ outcome: Outcome) {
        let request = exchange.request
        var hit = HitRecord(
            timestampMilliseconds: request.receivedMilliseconds, requestId: exchange.requestId,
            configRevision: exchange.table?.snapshot.revision ?? "", method: request.method.rawValue,
            path: String(exchange.recordedPath), clientIP: request.clientIP ?? "")
        if let route = exchange.route?.route {
            hit.api = route.api
            hit.publisher = route.publisher
            hit.category = route.category.rawValue
        }
        hit.operation = exchange.operation?.operationId
        hit.clientId = exchange.clientId
        hit.consumer = exchange.consumer
        hit.status = outcome.status
        hit.decision = outcome.decision
        hit.latencyMilliseconds = outcome.latencyMilliseconds
        hit.upstreamMilliseconds = outcome.upstreamMilliseconds
        hit.bytesIn = outcome.bytesIn
        hit.bytesOut = outcome.bytesOut
        hit.validation = exchange.validationFailure
        hit.consentId = exchange.consentId
        log.record(hit)
        let key = GatewayMetrics.RequestKey(api: hit.api ?? "-", status: hit.status, decision: hit.decision)
        let found = series[key] ?? metrics.series(for: key)
        if series.count < 10_000 { series[key] = found }
        found.record(seconds: hit.latencyMilliseconds / 1000)
    }
}
