import Foundation
import SetuTestSupport
import Testing

@testable import SetuHits

struct AlertEvaluatorTests {
    /// 2026-11-29T10:00:00Z.
    let start: Int64 = 1_795_946_400_000

    func hit(
        at offset: Int64, consumer: String? = "acme-bank", api: String? = "cbse/marksheet", status: Int = 200,
        decision: String = "allow", latency: Double = 10
    ) -> HitRecord {
        var record = HitRecord(
            timestampMilliseconds: start + offset, requestId: "r", configRevision: "abc", method: "POST", path: "/p",
            clientIP: "127.0.0.1")
        record.consumer = consumer
        record.api = api
        record.publisher = api?.split(separator: "/").first.map(String.init)
        record.status = status
        record.decision = decision
        record.latencyMilliseconds = latency
        return record
    }

    func rule(
        _ name: String, _ metric: AlertEvaluator.Rule.Metric, threshold: Double, window: Int64 = 10_000, api: String? = nil,
        consumer: String? = nil
    ) -> AlertEvaluator.Rule {
        AlertEvaluator.Rule(
            name: name, metricName: "\(metric)", metric: metric, threshold: threshold, window: "\(window / 1000)s",
            windowMilliseconds: window, severity: "warning", api: api, consumer: consumer)
    }

    @Test func anErrorRateFiresAboveItsThresholdAndResolvesWhenTheErrorsLeaveTheWindow() {
        let evaluator = AlertEvaluator()
        evaluator.update(rules: [rule("errors", .errorRate, threshold: 0.2)], now: start)
        // 3 of 10 answered 502 in the first second: 30%.
        evaluator.observe((0..<10).map { hit(at: Int64($0) * 50, status: $0 < 3 ? 502 : 200, decision: $0 < 3 ? "error:upstream-unreachable" : "allow") })
        let fired = evaluator.evaluate(now: start + 1000) { [] }
        #expect(fired.map(\.state) == [.firing])
        #expect(fired.first?.value == 0.3)
        #expect(evaluator.firing.map(\.rule.name) == ["errors"])
        // Still firing, without a second event.
        #expect(evaluator.evaluate(now: start + 2000) { [] }.isEmpty)
        // Good requests later: the errors are still in the 10 s window, and the rate falls to 3 of 20.
        evaluator.observe((0..<10).map { hit(at: 5000 + Int64($0)) })
        let resolved = evaluator.evaluate(now: start + 6000) { [] }
        #expect(resolved.map(\.state) == [.resolved])
        #expect(resolved.first?.value == 0.15)
        #expect(resolved.first?.since == start + 1000)
        #expect(evaluator.firing.isEmpty)
    }

    @Test func aWindowForgetsWhatIsOlderThanIt() {
        let evaluator = AlertEvaluator()
        evaluator.update(rules: [rule("failures", .upstreamFailures, threshold: 2, window: 5000)], now: start)
        evaluator.observe([
            hit(at: 0, status: 504, decision: "error:upstream-timeout"), hit(at: 100, status: 503),
            hit(at: 200, status: 502, decision: "error:upstream-unreachable"), hit(at: 300, status: 401, decision: "deny:invalid-credentials"),
        ])
        #expect(evaluator.evaluate(now: start + 1000) { [] }.first?.value == 3)
        // Six seconds on, the failures left the window and nothing came since: no value, resolved.
        let resolved = evaluator.evaluate(now: start + 7000) { [] }
        #expect(resolved.map(\.state) == [.resolved])
        #expect(evaluator.states.first?.value == nil)
        // A hit older than the window is not counted.
        evaluator.observe([hit(at: 0, status: 502, decision: "error:upstream-unreachable")])
        #expect(evaluator.evaluate(now: start + 7000) { [] }.isEmpty)
    }

    @Test func latencyDenialsSelectorsAndQuotas() {
        let evaluator = AlertEvaluator()
        evaluator.update(
            rules: [
                rule("slow", .latency(percentile: 95), threshold: 500), rule("denied", .denialRate, threshold: 0.5, consumer: "swift-loans"),
                rule("quota", .quotaUse, threshold: 0.9, api: "cbse/marksheet"),
            ], now: start)
        var hits = (1...100).map { hit(at: Int64($0), latency: Double($0) * 10) }
        hits += (0..<4).map { hit(at: Int64($0), consumer: "swift-loans", status: 429, decision: "deny:rate-limited", latency: 9000) }
        hits.append(hit(at: 5, consumer: "swift-loans"))
        evaluator.observe(hits)
        let events = evaluator.evaluate(now: start + 1000) {
            [
                .init(consumer: "acme-bank", api: "cbse/marksheet", used: 95, limit: 100),
                .init(consumer: "acme-bank", api: "other/api", used: 100, limit: 100),
            ]
        }
        #expect(events.map(\.rule.name) == ["denied", "quota", "slow"])
        let values = Dictionary(uniqueKeysWithValues: events.map { ($0.rule.name, $0.value ?? -1) })
        // Denials by swift-loans only: 4 of 5. The latency of what was let through: 95th of 10…1000 ms, within 1%.
        #expect(values["denied"] == 0.8)
        #expect(values["quota"] == 0.95)
        #expect(abs(values["slow"]! - 950) <= 9.5)
    }

    @Test func aChangedRuleIsEvaluatedAgainAndARemovedOneResolves() {
        let evaluator = AlertEvaluator()
        let errors = rule("errors", .errorRate, threshold: 0.2)
        evaluator.update(rules: [errors, rule("denied", .denialRate, threshold: 0.9)], now: start)
        evaluator.observe((0..<4).map { hit(at: Int64($0), status: 502, decision: "error:upstream-unreachable") })
        #expect(evaluator.evaluate(now: start + 1000) { [] }.map(\.state) == [.firing])
        // A new threshold keeps the alert firing until the new evaluation, which starts from an empty window.
        var changed = errors
        changed.threshold = 0.5
        evaluator.update(rules: [changed, rule("denied", .denialRate, threshold: 0.9)], now: start + 1500)
        #expect(evaluator.firing.first?.rule.threshold == 0.5)
        evaluator.observe((0..<4).map { hit(at: 1600 + Int64($0), status: $0 == 0 ? 502 : 200) })
        let reevaluated = evaluator.evaluate(now: start + 2000) { [] }
        #expect(reevaluated.map(\.state) == [.resolved] && reevaluated.first?.value == 0.25)
        // Firing again, then removed by a reconcile: resolved, with no value.
        evaluator.observe((0..<10).map { hit(at: 1700 + Int64($0), status: 502, decision: "error:upstream-unreachable") })
        #expect(evaluator.evaluate(now: start + 2500) { [] }.map(\.state) == [.firing])
        evaluator.update(rules: [], now: start + 3000)
        #expect(evaluator.firing.isEmpty && evaluator.states.isEmpty)
        // The next evaluation tells of the resolution, once.
        let removed = evaluator.evaluate(now: start + 3250) { [] }
        #expect(removed.map(\.state) == [.resolved] && removed.first?.value == nil && removed.first?.since == start + 2500)
        #expect(evaluator.evaluate(now: start + 3500) { [] }.isEmpty)
    }

    @Test func theHitLogTellsItsObserverOfEveryHitItWrote() throws {
        let directory = TemporaryDirectory()
        let evaluator = AlertEvaluator()
        evaluator.update(rules: [rule("all", .upstreamFailures, threshold: 1000, window: 3_600_000)], now: start)
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path), observers: [evaluator])
        let now = HitLog.nowMilliseconds()
        for index in 0..<50 {
            var record = hit(at: 0, status: 502, decision: "error:upstream-unreachable")
            record.timestampMilliseconds = now + Int64(index)
            log.record(record)
        }
        log.close()
        _ = evaluator.evaluate(now: now + 1000) { [] }
        #expect(evaluator.states.first?.value == 50)
    }
}
