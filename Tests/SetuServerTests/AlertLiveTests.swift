import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SetuTestSupport
import Testing

/// A webhook receiver on loopback, as an Alertmanager bridge would be: it records what is
/// posted to it, and answers 500 to the first post.
final class WebhookReceiver: Sendable {
    let port: Int
    private let bodies: TestUpstream.Log
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    private init(port: Int, bodies: TestUpstream.Log, group: ServiceGroup, task: Task<Void, Error>) {
        self.port = port
        self.bodies = bodies
        self.group = group
        self.task = task
    }

    static func start() async throws -> WebhookReceiver {
        let log = TestUpstream.Log()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
                log.append(TestUpstream.Received(method: request.method.rawValue, path: request.head.path ?? "", headers: [], body: body))
                return Response(status: log.all.count == 1 ? .internalServerError : .ok)
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "webhook"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "webhook"))
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [], logger: Logger(label: "webhook")))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        return WebhookReceiver(port: port, bodies: log, group: group, task: task)
    }

    /// Every post's JSON body, in order.
    var posts: [[String: Any]] {
        bodies.all.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8))) as? [String: Any] }
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// Alert rules evaluated by a running daemon on real traffic.
@Suite(.serialized) struct AlertLiveTests {
    let pan = "/pan/v3/pancr/certificate"
    let unreachable = "/cbse/v3/class-x/sscer/certificate"

    /// Waits up to `seconds` for `condition`, sending `load` between checks.
    func eventually(
        _ seconds: Double, load: @Sendable () async throws -> Void = {}, _ condition: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await load()
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    func firing(_ daemon: RunningDaemon) async throws -> [String] {
        let page = try await call(daemon.admin + "/alerts", method: .GET).body
        let json = (try? JSONSerialization.jsonObject(with: Data(page.utf8))) as? [String: Any]
        return (json?["firing"] as? [[String: Any]] ?? []).compactMap { $0["rule"] as? String }
    }

    @Test func aRuleFiresAndResolvesOnLiveTrafficAndItsWebhookGetsAlertmanagersPayload() async throws {
        let upstream = try await TestUpstream.start()
        let receiver = try await WebhookReceiver.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let rules = try marketplace.fixture.read("policies/alerts.yaml")
        try marketplace.fixture.write(
            "policies/alerts.yaml",
            rules + """
                ---
                apiVersion: setu/v1
                kind: AlertRule
                metadata:
                  name: cbse-errors
                spec:
                  description: Calls to CBSE fail.
                  metric: error-rate
                  threshold: 0.3
                  window: 2s
                  severity: critical
                  selector:
                    publisher: cbse
                  webhook: http://127.0.0.1:\(receiver.port)/hook

                """)
        _ = try marketplace.fixture.commitAll("Alert on CBSE's errors", author: LiveMarketplace.admin)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let gateway = daemon.gateway, pan = pan, unreachable = unreachable

        // Half of CBSE's calls fail: its upstream cannot be reached.
        let failing: @Sendable () async throws -> Void = {
            let good = try await call(gateway + "/cbse/v3/class-xii/hscer/certificate", headers: credentials("acme-bank-prod"), body: "{}")
            let bad = try await call(gateway + unreachable, headers: credentials("edu-verify-prod"), body: "{}")
            #expect(good.status == 200 && bad.status == 502)
        }
        #expect(try await eventually(10, load: failing) { try await firing(daemon).contains("cbse-errors") })
        let metrics = try await call(daemon.admin + "/metrics", method: .GET).body
        #expect(metrics.contains(#"setu_alerts_firing{rule="cbse-errors"} 1"#))
        #expect(metrics.contains(#"setu_alerts_firing{rule="cbse-slow"} 0"#))

        // Then only good calls, to the real upstream: the failures leave the window.
        let good: @Sendable () async throws -> Void = { _ = try await call(gateway + pan, headers: credentials("acme-bank-prod"), body: "{}") }
        let resolved = try await eventually(15, load: good) { try await !firing(daemon).contains("cbse-errors") }
        #expect(resolved)

        // alerts.jsonl: firing, then resolved, with what and why.
        let lines = try String(contentsOfFile: daemon.state.child("state/alerts.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { $0["rule"] as? String == "cbse-errors" }
        #expect(lines.map { $0["state"] as? String } == ["firing", "resolved"])
        #expect(lines.first?["selector"] as? [String: String] == ["publisher": "cbse"])
        #expect(lines.first?["threshold"] as? Double == 0.3)
        #expect(lines.first?["window"] as? String == "2s")
        #expect((lines.first?["value"] as? Double ?? 0) > 0.3)
        #expect((lines.first?["ts"] as? String)?.hasSuffix("Z") == true)

        // The receiver answered the first post 500; it was posted again, then the resolution.
        #expect(try await eventually(20) { receiver.posts.count >= 3 })
        let posts = receiver.posts
        #expect(posts.map { $0["status"] as? String } == ["firing", "firing", "resolved"])
        let first = posts[0]
        #expect(first["version"] as? String == "4")
        #expect(first["receiver"] as? String == "setu")
        #expect(first["groupLabels"] as? [String: String] == ["alertname": "cbse-errors"])
        let alert = try #require((first["alerts"] as? [[String: Any]])?.first)
        #expect(alert["status"] as? String == "firing")
        #expect(
            alert["labels"] as? [String: String] == ["alertname": "cbse-errors", "severity": "critical", "metric": "error-rate", "publisher": "cbse"])
        #expect((alert["annotations"] as? [String: String])?["description"] == "Calls to CBSE fail.")
        #expect(alert["endsAt"] as? String == "0001-01-01T00:00:00Z")
        #expect((alert["fingerprint"] as? String)?.count == 16)
        let ended = try #require((posts[2]["alerts"] as? [[String: Any]])?.first)
        #expect(ended["startsAt"] as? String == alert["startsAt"] as? String)
        #expect(ended["endsAt"] as? String != "0001-01-01T00:00:00Z")

        #expect(daemon.stop() == 0)
        await receiver.stop()
        await upstream.stop()
    }

    @Test func aReconcileThatRemovesAFiringRuleResolvesIt() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let gateway = daemon.gateway
        // The example's high-error-rate: more than 5% of calls answered 5xx over 5 minutes.
        let unreachable = unreachable
        let failing: @Sendable () async throws -> Void = {
            _ = try await call(gateway + unreachable, headers: credentials("edu-verify-prod"), body: "{}")
        }
        #expect(try await eventually(10, load: failing) { try await firing(daemon).contains("high-error-rate") })

        let rules = try marketplace.fixture.read("policies/alerts.yaml")
        let kept = rules.components(separatedBy: "---\n").filter { !$0.contains("name: high-error-rate") }.joined(separator: "---\n")
        try marketplace.fixture.write("policies/alerts.yaml", kept)
        _ = try marketplace.fixture.commitAll("Drop the error-rate alert", author: LiveMarketplace.admin)
        #expect(try await call(daemon.admin + "/reconcile").status == 200)
        // Out of force as soon as the reconcile answers; told within the evaluator's next tick.
        #expect(try await !firing(daemon).contains("high-error-rate"))
        let file = daemon.state.child("state/alerts.jsonl")
        #expect(try await eventually(5) { (try? String(contentsOfFile: file, encoding: .utf8))?.contains(#""state":"resolved""#) == true })
        let metrics = try await call(daemon.admin + "/metrics", method: .GET).body
        #expect(!metrics.contains("high-error-rate"))
        let events = try String(contentsOfFile: file, encoding: .utf8)
        #expect(events.contains(#""rule":"high-error-rate","selector":{},"severity":"critical","since""#))
        #expect(events.components(separatedBy: #""state":"resolved""#).count == 2)
        #expect(daemon.stop() == 0)
        await upstream.stop()
    }
}
