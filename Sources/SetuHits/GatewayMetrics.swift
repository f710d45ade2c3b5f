import Prometheus
import Synchronization

/// The daemon's Prometheus metrics, served as text on the admin listener's `/metrics`.
///
/// Requests are counted by API, status class and decision, with a latency histogram per
/// API; reconciles by result, with their duration and the revision in force; entitlements
/// by state; and hits the log had to drop.
public final class GatewayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let reconcileDuration: DurationHistogram
    private let droppedHits: Counter
    private let openConnections: Gauge
    private let refusedConnections: Counter
    /// The one revision series in force; the previous one is removed so the exposition
    /// shows only the commit that is serving.
    private let revisionInfo = Mutex<Gauge?>(nil)
    /// `setu_alerts_firing` by rule.
    private let alertSeries = Mutex<[String: Gauge]>([:])
    /// `setu_limits_store_up`, once the gateway has a shared store.
    private let limitStoreUp = Mutex<Gauge?>(nil)

    private static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// Registers every series that exists from the start.
    public init() {
        reconcileDuration = registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "setu", metricName: "reconcile_duration", unitName: "seconds",
                helpText: "Time taken by each reconcile."),
            buckets: [
                .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            ])
        droppedHits = registry.makeCounter(
            descriptor: .init(
                namespace: "setu", subsystem: "hits", metricName: "dropped", unitName: "total",
                helpText: "Hits the hit log dropped: its queue was full or a write failed."))
        // Present from the start, so a scrape before any drop shows 0 rather than nothing.
        droppedHits.increment(by: Int64(0))
        openConnections = registry.makeGauge(
            descriptor: .init(
                namespace: "setu", subsystem: "gateway", metricName: "connections", unitName: "open",
                helpText: "Client connections open on the gateway."))
        refusedConnections = registry.makeCounter(
            descriptor: .init(
                namespace: "setu", subsystem: "gateway", metricName: "connections_refused", unitName: "total",
                helpText: "Client connections refused because the gateway had its maximum open."))
        refusedConnections.increment(by: Int64(0))
    }

    /// A client connection opened.
    public func connectionOpened() {
        openConnections.increment()
    }

    /// A client connection closed.
    public func connectionClosed() {
        openConnections.decrement()
    }

    /// A client connection was refused for the connection limit.
    public func connectionRefused() {
        refusedConnections.increment()
    }

    /// Whether the shared store of plans is reachable from every event loop.
    public func limitStore(up: Bool) {
        limitStoreUp.withLock { gauge in
            if gauge == nil { gauge = registry.makeGauge(descriptor: Self.limitStoreUp) }
            gauge?.set(to: up ? 1 : 0)
        }
    }

    /// A request whose plan's fail mode decided it, as the shared store could not.
    public func limitFallback(failMode: String) {
        registry.makeCounter(descriptor: Self.limitFallbacks, labels: [("fail_mode", failMode)]).increment()
    }

    /// Which requests one series counts.
    public struct RequestKey: Hashable, Sendable {
        /// The API id, or `-` when the request matched no API.
        public var api: String
        /// The status divided by 100.
        public var statusClass: Int
        /// `allow`, `deny:<reason>` or `error:<reason>`.
        public var decision: String

        /// The key of requests to `api` answered `status` with `decision`.
        public init(api: String, status: Int, decision: String) {
            self.api = api
            statusClass = status / 100
            self.decision = decision
        }
    }

    /// The counter and latency histogram of one kind of request, to be kept and reused:
    /// the registry builds names and label lists on every lookup.
    public struct RequestSeries: Sendable {
        let counter: Counter
        let latency: DurationHistogram

        /// Counts one request that took `seconds`.
        public func record(seconds: Double) {
            counter.increment()
            latency.recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    /// The series for a kind of request, made when first asked for.
    public func series(for key: RequestKey) -> RequestSeries {
        requestSeries.withLock { known in
            if let found = known[key] { return found }
            let made = RequestSeries(
                counter: registry.makeCounter(
                    descriptor: Self.requests,
                    labels: [
                        ("api", key.api), ("status_class", "\(key.statusClass)xx"), ("decision", key.decision),
                    ]),
                latency: registry.makeDurationHistogram(
                    descriptor: Self.latency, labels: [("api", key.api)],
                    buckets: Self.latencyBuckets))
            known[key] = made
            return made
        }
    }

    /// Counts one answered request.
    /// - Parameters:
    ///   - api: the API id, or `-` when the request matched no API.
    ///   - status: the HTTP status sent.
    ///   - decision: `allow`, `deny:<reason>` or `error:<reason>`.
    ///   - seconds: the request's latency.
    public func request(api: String, status: Int, decision: String, seconds: Double) {
        series(for: RequestKey(api: api, status: status, decision: decision)).record(seconds: seconds)
    }

    private let requestSeries = Mutex<[RequestKey: RequestSeries]>([:])

    /// Records a finished reconcile.
    /// - Parameters:
    ///   - succeeded: whether it produced a snapshot that is now serving.
    ///   - seconds: how long it took.
    ///   - revision: the commit now serving, when it succeeded.
    ///   - entitlements: entitlements by state in the serving snapshot, when it succeeded.
    public func reconcile(succeeded: Bool, seconds: Double, revision: String?, entitlements: [String: Int]?) {
        reconcileDuration.recordNanoseconds(Int64(seconds * 1e9))
        registry.makeCounter(descriptor: Self.reconciles, labels: [("result", succeeded ? "success" : "failure")]).increment()
        if let revision {
            let next = registry.makeGauge(descriptor: Self.revision, labels: [("revision", revision)])
            revisionInfo.withLock { current in
                if let previous = current, previous !== next { registry.unregisterGauge(previous) }
                next.set(to: 1)
                current = next
            }
        }
        for (state, count) in entitlements ?? [:] {
            registry.makeGauge(descriptor: Self.entitlementStates, labels: [("state", state)]).set(to: Double(count))
        }
        if succeeded {
            registry.makeGauge(descriptor: Self.lastSuccess).set(to: Double(HitLog.nowMilliseconds()) / 1000)
        }
    }

    /// Counts hits the hit log dropped.
    public func droppedHits(_ count: Int) {
        droppedHits.increment(by: Int64(count))
    }

    /// Sets `setu_alerts_firing{rule}` to 1 for each rule firing and 0 for the others in
    /// force, and removes the series of rules no longer in force.
    public func alerts(firing: [String: Bool]) {
        alertSeries.withLock { series in
            for (rule, gauge) in series where firing[rule] == nil {
                registry.unregisterGauge(gauge)
                series[rule] = nil
            }
            for (rule, fires) in firing {
                let gauge = series[rule] ?? registry.makeGauge(descriptor: Self.alertsFiring, labels: [("rule", rule)])
                gauge.set(to: fires ? 1 : 0)
                series[rule] = gauge
            }
        }
    }

    /// The metrics in Prometheus' text exposition format.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", subsystem: "gateway", metricName: "requests", unitName: "total",
            helpText: "Requests answered by the gateway, by API, status class and decision.")
    }
    private static var latency: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", subsystem: "gateway", metricName: "request_duration", unitName: "seconds",
            helpText: "Time from a request's arrival to the end of its response, by API.")
    }
    private static var reconciles: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", metricName: "reconciles", unitName: "total",
            helpText: "Reconciles by result.")
    }
    private static var revision: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", metricName: "config_revision", unitName: "info",
            helpText: "The commit the serving snapshot was built from (value 1).")
    }
    private static var entitlementStates: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", metricName: "entitlements", unitName: "count",
            helpText: "Entitlements in the serving snapshot, by state.")
    }
    private static var alertsFiring: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", metricName: "alerts", unitName: "firing",
            helpText: "Whether each alert rule in force fires (1) or not (0).")
    }
    private static var limitStoreUp: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", subsystem: "limits", metricName: "store", unitName: "up",
            helpText: "Whether the Redis that keeps plans for every replica is reachable (1) or not (0).")
    }
    private static var limitFallbacks: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", subsystem: "limits", metricName: "fallbacks", unitName: "total",
            helpText: "Requests decided by their plan's fail mode because Redis could not be asked, by fail mode.")
    }
    private static var lastSuccess: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "setu", metricName: "reconcile_last_success", unitName: "timestamp_seconds",
            helpText: "When the last successful reconcile finished, in seconds since 1970.")
    }
}
