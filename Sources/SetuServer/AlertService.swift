import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SetuFormats
import SetuGateway
import SetuHits
import SetuManifest
import SetuStorage

/// Evaluates the alert rules in force four times a second (DESIGN.md §8). Each rule that starts or
/// stops firing is appended to `<state>/alerts.jsonl`, said in the log, and, when the rule
/// has a `webhook`, queued for delivery in Alertmanager's webhook format. `/metrics` has
/// `setu_alerts_firing{rule}`, and `/alerts` the rules that fire.
///
/// The evaluator takes the rules of each snapshot as it starts serving (`ReconcileService`'s
/// `onInstall`), so a reconcile that changes a rule evaluates it again from an empty window,
/// and one that removes a firing rule resolves it.
struct AlertService: Service {
    let evaluator: AlertEvaluator
    let gateway: Gateway
    let metrics: GatewayMetrics
    let webhooks: WebhookDelivery
    /// `<state>/alerts.jsonl`.
    let eventsFile: String
    let logger: Logger

    func run() async throws {
        var failing = false
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(250)) }
            } catch {
                return
            }
            let now = HitLog.nowMilliseconds()
            let gateway = gateway
            let events = evaluator.evaluate(now: now) {
                gateway.quotaUsage().compactMap { use in
                    use.limit.map { AlertEvaluator.QuotaSample(consumer: use.consumer, api: use.api, used: use.used, limit: $0) }
                }
            }
            metrics.alerts(firing: Dictionary(evaluator.states.map { ($0.rule.name, $0.firing) }, uniquingKeysWith: { $1 }))
            guard !events.isEmpty else { continue }
            for event in events {
                let value = event.value.map { AlertJSON.number($0) } ?? "none"
                logger.log(
                    level: event.state == .firing ? (event.rule.severity == "critical" ? .critical : .warning) : .notice,
                    "alert \(event.rule.name) \(event.state.rawValue): \(event.rule.metricName) \(value), threshold \(AlertJSON.number(event.rule.threshold)) over \(event.rule.window)"
                )
                if event.rule.webhook != nil { webhooks.enqueue(event) }
            }
            do {
                // Synced: an alert's change is rare, and worth keeping.
                try AtomicFile.append(Array(events.map(AlertJSON.eventLine).joined().utf8), to: eventsFile)
                failing = false
            } catch {
                if !failing { logger.error("cannot write \(eventsFile): \(error)") }
                failing = true
            }
        }
    }

    /// A rule as the evaluator applies it.
    static func rule(_ rule: AlertRule) -> AlertEvaluator.Rule {
        let metric: AlertEvaluator.Rule.Metric
        switch rule.metric {
        case .errorRate: metric = .errorRate
        case .latencyP50: metric = .latency(percentile: 50)
        case .latencyP95: metric = .latency(percentile: 95)
        case .latencyP99: metric = .latency(percentile: 99)
        case .denialRate: metric = .denialRate
        case .quotaUse: metric = .quotaUse
        case .upstreamFailures: metric = .upstreamFailures
        }
        return AlertEvaluator.Rule(
            name: rule.name, metricName: rule.metric.rawValue, metric: metric, threshold: rule.threshold, window: rule.window,
            windowMilliseconds: Int64(ManifestDuration.milliseconds(rule.window) ?? 300_000), severity: rule.severity.rawValue,
            description: rule.description, publisher: rule.publisher, api: rule.api, consumer: rule.consumer, webhook: rule.webhook)
    }
}

/// Alerts as JSON: the lines of `alerts.jsonl`, `/alerts`, and Alertmanager's webhook payload.
enum AlertJSON {
    /// A value as alerts show it: up to four decimals, without trailing zeros.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        var text = String((value * 10_000).rounded() / 10_000)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    private static func selector(_ rule: AlertEvaluator.Rule) -> [String: String] {
        Dictionary(uniqueKeysWithValues: rule.selector)
    }

    /// One line of `alerts.jsonl`, newline included.
    static func eventLine(_ event: AlertEvaluator.Event) -> String {
        struct Line: Encodable {
            var ts: String
            var rule: String
            var state: String
            var metric: String
            var selector: [String: String]
            var value: Double?
            var threshold: Double
            var window: String
            var severity: String
            var since: String
        }
        let line = Line(
            ts: Timestamp.rfc3339(milliseconds: event.at), rule: event.rule.name, state: event.state.rawValue,
            metric: event.rule.metricName, selector: selector(event.rule), value: event.value.map { Double(number($0)) ?? $0 },
            threshold: event.rule.threshold, window: event.rule.window, severity: event.rule.severity,
            since: Timestamp.rfc3339(milliseconds: event.since))
        return encode(line) + "\n"
    }

    /// `/alerts`: the rules that fire, and every rule in force with its last value.
    static func page(_ evaluator: AlertEvaluator) -> [UInt8] {
        struct Firing: Encodable {
            var rule: String
            var metric: String
            var selector: [String: String]
            var value: Double
            var threshold: Double
            var window: String
            var severity: String
            var description: String?
            var since: String
        }
        struct Rule: Encodable {
            var rule: String
            var metric: String
            var selector: [String: String]
            var value: Double?
            var threshold: Double
            var window: String
            var firing: Bool
        }
        struct Page: Encodable {
            var firing: [Firing]
            var rules: [Rule]
        }
        let page = Page(
            firing: evaluator.firing.map { firing in
                Firing(
                    rule: firing.rule.name, metric: firing.rule.metricName, selector: selector(firing.rule), value: firing.value,
                    threshold: firing.rule.threshold, window: firing.rule.window, severity: firing.rule.severity,
                    description: firing.rule.description, since: Timestamp.rfc3339(milliseconds: firing.since))
            },
            rules: evaluator.states.map { state in
                Rule(
                    rule: state.rule.name, metric: state.rule.metricName, selector: selector(state.rule), value: state.value,
                    threshold: state.rule.threshold, window: state.rule.window, firing: state.firing)
            })
        return Array((encode(page, pretty: true) + "\n").utf8)
    }

    /// The body Alertmanager posts to a webhook receiver (version 4), for one rule's change,
    /// so that the bridges written for it (Slack, PagerDuty, email) take Setu's alerts as they are.
    static func alertmanager(_ event: AlertEvaluator.Event, externalURL: String) -> [UInt8] {
        struct Alert: Encodable {
            var status: String
            var labels: [String: String]
            var annotations: [String: String]
            var startsAt: String
            var endsAt: String
            var generatorURL: String
            var fingerprint: String
        }
        struct Message: Encodable {
            var version = "4"
            var groupKey: String
            var truncatedAlerts = 0
            var status: String
            var receiver = "setu"
            var groupLabels: [String: String]
            var commonLabels: [String: String]
            var commonAnnotations: [String: String]
            var externalURL: String
            var alerts: [Alert]
        }
        let rule = event.rule
        var labels = ["alertname": rule.name, "severity": rule.severity, "metric": rule.metricName]
        for (key, value) in rule.selector { labels[key] = value }
        var annotations = [
            "summary": "\(rule.metricName) is \(event.value.map(number) ?? "no longer measured") over \(rule.window) (threshold \(number(rule.threshold)))",
            "threshold": number(rule.threshold), "window": rule.window,
        ]
        if let value = event.value { annotations["value"] = number(value) }
        if let description = rule.description { annotations["description"] = description }
        // Alertmanager's fingerprint is a 64-bit hash of the labels in hex; FNV-1a is one.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in labels.sorted(by: { $0.key < $1.key }).map({ "\($0.key)=\($0.value)" }).joined(separator: ",").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        let fingerprint = String(repeating: "0", count: 16 - hex.count) + hex
        let alert = Alert(
            status: event.state.rawValue, labels: labels, annotations: annotations,
            startsAt: Timestamp.rfc3339(milliseconds: event.since),
            endsAt: event.state == .resolved ? Timestamp.rfc3339(milliseconds: event.at) : "0001-01-01T00:00:00Z",
            generatorURL: externalURL + "/alerts", fingerprint: fingerprint)
        let message = Message(
            groupKey: "{}:{alertname=\"\(rule.name)\"}", status: event.state.rawValue, groupLabels: ["alertname": rule.name],
            commonLabels: labels, commonAnnotations: annotations, externalURL: externalURL, alerts: [alert])
        return Array(encode(message).utf8)
    }

    private static func encode(_ value: some Encodable, pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Posts alerts to their rules' webhooks, off the data plane: from a bounded queue, one at a
/// time and in order (a resolution never arrives before its firing), each retried with
/// back-off (1, 2, 4, 8 and 16 s) until the receiver answers 2xx. When the queue is full a
/// new alert is dropped, counted and logged rather than waited for.
final class WebhookDelivery: Service, Sendable {
    /// Alerts waiting to be delivered, at most.
    static let capacity = 256
    /// Delays before each attempt after the first.
    let backoff: [Duration]
    let externalURL: String
    let logger: Logger
    private let stream: AsyncStream<AlertEvaluator.Event>
    private let continuation: AsyncStream<AlertEvaluator.Event>.Continuation

    init(externalURL: String, logger: Logger, backoff: [Duration] = [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16)]) {
        self.externalURL = externalURL
        self.logger = logger
        self.backoff = backoff
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.capacity))
    }

    /// Queues an alert; never waits.
    func enqueue(_ event: AlertEvaluator.Event) {
        if case .dropped = continuation.yield(event) {
            logger.error("the webhook queue is full (\(Self.capacity) alerts): alert \(event.rule.name) \(event.state.rawValue) is not delivered")
        }
    }

    func run() async throws {
        for await event in stream.cancelOnGracefulShutdown() {
            await deliver(event)
        }
    }

    private func deliver(_ event: AlertEvaluator.Event) async {
        guard let url = event.rule.webhook else { return }
        let body = AlertJSON.alertmanager(event, externalURL: externalURL)
        for attempt in 0...backoff.count {
            if attempt > 0 {
                do { try await Task.sleep(for: backoff[attempt - 1]) } catch { return }
            }
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "setu")
            request.body = .bytes(ByteBuffer(bytes: body))
            let outcome: String
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 1 << 16)
                if (200..<300).contains(response.status.code) { return }
                outcome = "answered \(response.status.code)"
            } catch {
                outcome = "failed: \(error)"
            }
            if attempt < backoff.count {
                logger.warning("webhook for alert \(event.rule.name) \(outcome); trying again in \(backoff[attempt])")
            } else {
                logger.error("webhook for alert \(event.rule.name) \(outcome) after \(attempt + 1) attempts; the alert is not delivered")
            }
        }
    }
}
