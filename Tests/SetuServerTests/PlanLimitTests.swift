import Foundation
import SetuTestSupport
import Testing

/// A marketplace whose one API, `/echo` on a `RawUpstream`, is subscribed on a plan with a
/// tight rate limit and a small daily quota.
final class LimitedMarketplace: @unchecked Sendable {
    let fixture: GitFixture
    var path: String { fixture.path }

    init(upstreamPort: Int, rate: String, quota: String, extra: [String] = []) throws {
        fixture = try GitFixture()
        try fixture.write("policies/platform.yaml", TestManifests.platform("limits"))
        try writePlan(rate: rate, quota: quota, extra: extra)
        try fixture.write("catalog/lab/publisher.yaml", TestManifests.publisher("lab"))
        try fixture.write(
            "catalog/lab/echo.yaml",
            TestManifests.api(
                "echo", basePath: "/echo", upstream: "http://127.0.0.1:\(upstreamPort)",
                plan: "metered"))
        try fixture.write("subscriptions/tester/echo.yaml", TestManifests.subscription("echo", api: "lab/echo", plan: "metered"))
        try fixture.write("subscriptions/tester/consumer.yaml", TestManifests.tester)
        try fixture.commitAll("A metered marketplace")
    }

    /// - Parameter extra: further fields of the plan's spec, such as `precision: batched`.
    func writePlan(rate: String, quota: String, extra: [String] = []) throws {
        try fixture.write(
            "policies/plans.yaml",
            """
            apiVersion: setu/v1
            kind: Plan
            metadata: {name: metered}
            spec:
              displayName: Metered
              rateLimit: \(rate)
              quota: \(quota)
            \(extra.map { "  " + $0 }.joined(separator: "\n"))

            """)
    }
}

/// Plans' rate limits and quotas, on a running daemon.
extension DataPlaneTests {
    @Suite struct PlanLimits {
        let request = DataPlane.head("GET", "/echo/limited")

        struct Limited {
            let upstream: RawUpstream
            let marketplace: LimitedMarketplace
            let daemon: RunningDaemon
        }

        func start(rate: String, quota: String, state: TemporaryDirectory = TemporaryDirectory()) async throws -> Limited {
            let upstream = try RawUpstream()
            let marketplace = try LimitedMarketplace(upstreamPort: upstream.port, rate: rate, quota: quota)
            let daemon = try await RunningDaemon.start(repo: marketplace.path, state: state)
            return Limited(upstream: upstream, marketplace: marketplace, daemon: daemon)
        }

        /// Sends `count` requests on one connection, one after another; the statuses in order.
        func statuses(_ daemon: RunningDaemon, _ count: Int) throws -> [RawAnswer] {
            let client = try RawClient(port: daemon.gatewayPort)
            var answers: [RawAnswer] = []
            for _ in 0..<count {
                client.send(request)
                guard let answer = client.response(within: 10) else { break }
                answers.append(answer)
            }
            return answers
        }

        @Test func aBurstBeyondThePlanGets429WithRetryAfterAndEveryAnswerStatesTheLimits() async throws {
            let plane = try await start(rate: "{requests: 2, per: minute, burst: 3}", quota: "{requests: 1000, per: day}")
            let daemon = plane.daemon
            let answers = try statuses(daemon, 5)
            #expect(answers.map(\.status) == [200, 200, 200, 429, 429])
            #expect(answers[0].header("RateLimit-Policy") == [#""rate";q=3;w=90, "quota";q=1000;w=86400"#])
            #expect(answers[0].header("RateLimit").first?.hasPrefix(#""rate";r=2;t="#) == true)
            #expect(answers[0].header("RateLimit").first?.contains(#""quota";r=999;t="#) == true)
            #expect(answers[2].header("RateLimit").first?.hasPrefix(#""rate";r=0;t="#) == true)
            let refused = answers[3]
            #expect(refused.problemType == "urn:setu:problem:rate-limited")
            let retryAfter = try #require(refused.header("Retry-After").first.flatMap(Int.init))
            #expect((1...30).contains(retryAfter), "one request comes back every 30 s")
            #expect(refused.header("RateLimit-Policy").count == 1)
            #expect(refused.detail.contains("lab/echo") && refused.detail.contains("metered"))
            try await Task.sleep(for: .milliseconds(300))
            let decisions = try hitLines(in: daemon.hitDirectory).compactMap { $0["decision"] as? String }
            #expect(decisions.filter { $0 == "deny:rate-limited" }.count == 2)
            let metrics = try await call(daemon.admin + "/metrics", method: .GET).body
            #expect(metrics.contains(#"decision="deny:rate-limited""#))
        }

        @Test func twoClientsOfOneConsumerShareOneLimit() async throws {
            let plane = try await start(rate: "{requests: 1, per: hour, burst: 10}", quota: "{requests: 1000, per: day}")
            let daemon = plane.daemon
            // Two connections, which the gateway spreads over its event loops, sending at once.
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<2 {
                    group.addTask { try statuses(daemon, 15).map(\.status) }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(results.count == 30)
            #expect(results.filter { $0 == 200 }.count == 10, "\(results)")
            #expect(results.filter { $0 == 429 }.count == 20)
        }

        @Test func aQuotaRunsOutAndItsCountSurvivesARestartAndACrash() async throws {
            let state = TemporaryDirectory()
            let plane = try await start(rate: "{requests: 1000, per: second}", quota: "{requests: 12, per: day}", state: state)
            let (upstream, marketplace) = (plane.upstream, plane.marketplace)
            var daemon = plane.daemon
            #expect(try statuses(daemon, 4).allSatisfy { $0.status == 200 })
            #expect(daemon.stop() == 0)
            let saved = try String(contentsOfFile: state.child("state/quotas.json"), encoding: .utf8)
            #expect(saved.contains(#""used":4"#), "\(saved)")

            daemon = try await RunningDaemon.start(repo: marketplace.path, state: state)
            let status = try await call(daemon.admin + "/status", method: .GET)
            let quotas = try #require(status.jsonObject["quotas"] as? [[String: Any]])
            #expect(quotas.first?["used"] as? Int == 4)
            #expect(quotas.first?["limit"] as? Int == 12)
            #expect(quotas.first?["consumer"] as? String == "tester")
            #expect(try statuses(daemon, 4).allSatisfy { $0.status == 200 })
            // Written within a second; a crash after that loses nothing.
            try await Task.sleep(for: .milliseconds(1500))
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()

            daemon = try await RunningDaemon.start(repo: marketplace.path, state: state)
            let answers = try statuses(daemon, 5)
            #expect(answers.map(\.status) == [200, 200, 200, 200, 429])
            #expect(answers[4].problemType == "urn:setu:problem:quota-exhausted")
            #expect(answers[4].header("RateLimit").first?.contains(#""quota";r=0;t="#) == true)
            let retryAfter = try #require(answers[4].header("Retry-After").first.flatMap(Int.init))
            #expect((1...86_400).contains(retryAfter), "the quota starts again at the next UTC midnight")
            #expect(upstream.log.requests.count == 12)
            #expect(daemon.stop() == 0)
            let report = try setu("status", "--repo", marketplace.path, "--state", state.child("state"))
            #expect(report.status == 0, "\(report.stderr)")
            #expect(
                report.stdout.contains("quota use (as setu serve last wrote it)\n  tester  lab/echo  \(QuotaPeriodName.today)  12 of 12 (100%)"),
                "\(report.stdout)")
        }

        @Test func aPlanChangedAtAReconcileKeepsTheCounts() async throws {
            let plane = try await start(rate: "{requests: 1000, per: second}", quota: "{requests: 100, per: day}")
            let (marketplace, daemon) = (plane.marketplace, plane.daemon)
            #expect(try statuses(daemon, 6).allSatisfy { $0.status == 200 })
            try marketplace.writePlan(rate: "{requests: 1000, per: second}", quota: "{requests: 8, per: day}")
            try marketplace.fixture.commitAll("Smaller quota")
            let reconciled = try await call(daemon.admin + "/reconcile")
            #expect(reconciled.status == 200)
            let answers = try statuses(daemon, 3)
            #expect(answers.map(\.status) == [200, 200, 429])
            #expect(answers[0].header("RateLimit-Policy").first?.contains(#""quota";q=8;w=86400"#) == true)
        }
    }
}

extension Answer {
    /// The body as a JSON object.
    var jsonObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

enum QuotaPeriodName {
    /// Today's UTC day, as a daily quota's period is named.
    static var today: String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }
}
