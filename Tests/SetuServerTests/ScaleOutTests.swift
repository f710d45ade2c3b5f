import Foundation
import SetuTestSupport
import Testing

/// Replicas of `setu serve` that share plans through a real Redis, and the faults they
/// survive: Redis killed and restarted, a replica killed, the git remote gone while the
/// history is rewritten.
extension DataPlaneTests {
    @Suite struct ScaleOut {
        let request = DataPlane.head("GET", "/echo/shared")

        @Test func anExactPlanHoldsItsQuotaExactlyAcrossThreeReplicas() async throws {
            let redis = try RedisServer()
            let upstream = try RawUpstream()
            let marketplace = try LimitedMarketplace(
                upstreamPort: upstream.port, rate: "{requests: 100000, per: second}", quota: "{requests: 1500, per: day}",
                extra: ["precision: exact", "failMode: closed"])
            let replicas = try await startReplicas(3, remote: "file://" + marketplace.path, arguments: ["--limits", redis.url])
            let load = spread(10_000, over: replicas.map(\.gatewayPort), connections: 9, request: request)
            #expect(load.all.count == 10_000)
            #expect(load.count(200) == 1500, "the quota holds across the replicas: \(load.count(200)) admitted")
            #expect(load.count(429) == 8500)
            #expect(load.statuses.values.allSatisfy { $0.contains(200) }, "every replica admitted some")
            #expect(upstream.log.requests.count == 1500)
            #expect(try redis.quotaUsed() == 1500)
            #expect(load.problems.values.flatMap { $0 }.allSatisfy { $0 == "urn:setu:problem:quota-exhausted" })

            // After a failover the server knows no scripts; they are sent whole, and nothing counts twice.
            try redis.cli("SCRIPT", "FLUSH")
            try redis.cli("DEL", "setu:{tester}:lab/echo:quota:\(QuotaPeriodName.today)")
            let again = spread(30, over: replicas.map(\.gatewayPort), connections: 3, request: request)
            #expect(again.count(200) == 30)
            #expect(try redis.quotaUsed() == 30)

            // The replicas' hit logs together hold every request.
            for replica in replicas { #expect(replica.stop() == 0) }
            let usage = try setu("usage", "--format", "json", replicas[0].hitDirectory, replicas[1].hitDirectory, replicas[2].hitDirectory)
            #expect(usage.status == 0, "\(usage.stderr)")
            #expect(usage.stdout.contains(#""hitsCounted" : 10030"#), "\(usage.stdout)")
        }

        @Test func aBatchedPlanStaysWithinItsStatedBound() async throws {
            let redis = try RedisServer()
            let upstream = try RawUpstream()
            // Each replica may admit one sync interval of requests beyond what the others
            // told Redis: at most burst + rate × 250 ms each.
            let (burst, rate, quota) = (50, 400, 1000)
            let marketplace = try LimitedMarketplace(
                upstreamPort: upstream.port, rate: "{requests: \(rate), per: second, burst: \(burst)}",
                quota: "{requests: \(quota), per: day}", extra: ["precision: batched"])
            let replicas = try await startReplicas(3, remote: "file://" + marketplace.path, arguments: ["--limits", redis.url])
            var admitted = 0
            let started = Date()
            // Until the quota is spent, at the pace a few clients can keep.
            while Date().timeIntervalSince(started) < 30 {
                let load = spread(1500, over: replicas.map(\.gatewayPort), connections: 6, request: request)
                #expect(load.count(0) == 0)
                admitted += load.count(200)
                if load.problems.values.flatMap({ $0 }).contains("urn:setu:problem:quota-exhausted") && load.count(200) == 0 { break }
            }
            let bound = replicas.count * (burst + rate / 4)
            #expect(admitted >= quota, "a batched plan never admits less than its quota")
            #expect(admitted <= quota + bound, "\(admitted) admitted: more than \(quota) + \(bound)")
            // Every admitted request reached Redis by the next sync.
            try await Task.sleep(for: .milliseconds(600))
            #expect(try redis.quotaUsed() == admitted)
            #expect(upstream.log.requests.count == admitted)
        }

        @Test func redisKilledMidLoadLeavesEachFailModeAsDocumentedAndCountingResumes() async throws {
            let redis = try RedisServer()
            struct Plane {
                let upstream: RawUpstream
                let marketplace: LimitedMarketplace
                let daemon: RunningDaemon
            }
            var planes: [String: Plane] = [:]
            // Each in a database of its own, so their counts stay apart.
            let databases = ["exact-open": 1, "exact-closed": 2, "batched-closed": 3]
            for (name, extra) in [
                ("exact-open", ["precision: exact", "failMode: open"]), ("exact-closed", ["precision: exact", "failMode: closed"]),
                ("batched-closed", ["precision: batched", "failMode: closed"]),
            ] {
                let upstream = try RawUpstream()
                let marketplace = try LimitedMarketplace(
                    upstreamPort: upstream.port, rate: "{requests: 100000, per: second}", quota: "{requests: 100000, per: day}",
                    extra: extra)
                let daemon = try await RunningDaemon.start(
                    repo: marketplace.path, arguments: ["--limits", "\(redis.url)/\(databases[name]!)", "--limits-timeout", "50ms"])
                planes[name] = Plane(upstream: upstream, marketplace: marketplace, daemon: daemon)
            }
            func load(_ name: String, _ count: Int) -> SpreadResult {
                spread(count, over: [planes[name]!.daemon.gatewayPort], connections: 2, request: request)
            }
            for name in planes.keys { #expect(load(name, 20).count(200) == 20, "\(name) before the kill") }

            redis.kill()
            try await Task.sleep(for: .milliseconds(200))
            let started = Date()
            let open = load("exact-open", 40)
            #expect(open.count(200) == 40, "failMode open: the replica's own counts limit requests")
            for name in ["exact-closed", "batched-closed"] {
                let closed = load(name, 40)
                #expect(closed.count(503) == 40, "\(name): \(closed.statuses)")
                #expect(closed.problems.values.flatMap { $0 }.allSatisfy { $0 == "urn:setu:problem:limits-unavailable" })
            }
            #expect(Date().timeIntervalSince(started) < 10, "no request waited on the dead store")
            let metrics = try await call(planes["exact-closed"]!.daemon.admin + "/metrics", method: .GET).body
            #expect(metrics.contains("setu_limits_store_up 0"), "\(metrics)")
            #expect(metrics.contains(#"setu_limits_fallbacks_total{fail_mode="closed"} 40"#))
            #expect(planes["exact-closed"]!.daemon.stderr.contains("cannot be reached"))

            // Restarted empty: counting resumes once each replica is connected again.
            try redis.start()
            for name in ["exact-closed", "batched-closed"] {
                var recovered = false
                for _ in 0..<100 where !recovered {
                    recovered = load(name, 1).count(200) == 1
                    if !recovered { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(recovered, "\(name) serves again after Redis is back")
            }
            #expect(load("exact-open", 10).count(200) == 10)
            try await Task.sleep(for: .milliseconds(600))
            // The open plan's 40 requests decided during the outage were told to Redis once it was back.
            #expect(try redis.quotaUsed(database: 1) == 50, "the outage's requests and the 10 after it")
            let after = try await call(planes["exact-closed"]!.daemon.admin + "/metrics", method: .GET).body
            #expect(after.contains("setu_limits_store_up 1"))
            #expect(planes["exact-closed"]!.daemon.stderr.contains("reachable again"))
            for plane in planes.values { #expect(plane.daemon.stop() == 0, "no crash") }
        }

        @Test func aReplicaKilledMidLoadLeavesTheOthersServingAndItsHitLogIntact() async throws {
            let redis = try RedisServer()
            let upstream = try RawUpstream()
            let marketplace = try LimitedMarketplace(
                upstreamPort: upstream.port, rate: "{requests: 100000, per: second}", quota: "{requests: 100000, per: day}",
                extra: ["precision: exact"])
            var replicas = try await startReplicas(3, remote: "file://" + marketplace.path, arguments: ["--limits", redis.url])
            let ports = replicas.map(\.gatewayPort)
            let victim = replicas[2]
            let killer = Task {
                try await Task.sleep(for: .milliseconds(400))
                victim.signal(SIGKILL)
            }
            let load = spread(6000, over: ports, connections: 6, request: request)
            try await killer.value
            victim.process.waitUntilExit()
            #expect(victim.process.terminationReason == .uncaughtSignal)
            for port in ports.dropLast() {
                #expect(load.statuses[port]?.allSatisfy { $0 == 200 } == true, "the others kept serving")
            }
            #expect(load.statuses[ports[2]]?.contains(0) == true, "the killed replica stopped answering")

            // Its hit log holds whole lines up to the last one it finished.
            var lines = 0
            for file in try FileManager.default.contentsOfDirectory(atPath: victim.hitDirectory) where file.hasSuffix(".jsonl") {
                let text = try String(contentsOfFile: victim.hitDirectory + "/" + file, encoding: .utf8)
                var complete = text.split(separator: "\n", omittingEmptySubsequences: false)
                if !text.hasSuffix("\n") { complete.removeLast() }
                for line in complete where !line.isEmpty {
                    #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(line)")
                    lines += 1
                }
            }
            #expect(lines > 0)

            // Restarted on its state, it serves the others' revision from its first reconcile.
            let revision = try await servedRevision(replicas[0])
            let restarted = try await RunningDaemon.start(
                repo: "file://" + marketplace.path, state: victim.state, arguments: ["--limits", redis.url])
            replicas[2] = restarted
            #expect(try await servedRevision(restarted) == revision)
            #expect(spread(20, over: [restarted.gatewayPort], connections: 1, request: request).count(200) == 20)
        }

        @Test func aRemoteGoneWhileItsHistoryIsRewrittenKeepsEveryReplicaOnItsLastSnapshotThenOnTheNewOne() async throws {
            let upstream = try RawUpstream()
            let marketplace = try LimitedMarketplace(
                upstreamPort: upstream.port, rate: "{requests: 100000, per: second}", quota: "{requests: 100000, per: day}")
            try marketplace.writePlan(rate: "{requests: 100000, per: second}", quota: "{requests: 99999, per: day}")
            _ = try marketplace.fixture.commitAll("A smaller quota")
            let work = TemporaryDirectory()
            let remote = work.child("remote.git")
            let away = work.child("away.git")
            _ = try run("/usr/bin/env", ["git", "clone", "-q", "--bare", marketplace.path, remote])
            let replicas = try await startReplicas(3, remote: "file://" + remote, arguments: [])
            let first = try #require(try await servedRevision(replicas[0]))

            // The remote is unreachable; meanwhile its history is rewritten.
            try FileManager.default.moveItem(atPath: remote, toPath: away)
            for replica in replicas {
                #expect(try await call(replica.admin + "/reconcile").status == 500)
                #expect(try await servedRevision(replica) == first)
            }
            #expect(spread(30, over: replicas.map(\.gatewayPort), connections: 3, request: request).count(200) == 30)
            let fixture = marketplace.fixture
            try marketplace.writePlan(rate: "{requests: 100000, per: second}", quota: "{requests: 88888, per: day}")
            _ = try fixture.git("commit", "-q", "--amend", "-a", "-m", "A smaller quota, amended")
            let rewritten = try fixture.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try fixture.git("push", "-q", "--force", away, "HEAD:main")

            // Back: every replica serves the rewritten history, and says it was rewritten.
            try FileManager.default.moveItem(atPath: away, toPath: remote)
            for replica in replicas {
                #expect(try await call(replica.admin + "/reconcile").status == 200)
                let status = try await call(replica.admin + "/status", method: .GET).jsonObject
                #expect(status["revision"] as? String == rewritten)
                #expect((status["rewrittenHistory"] as? String)?.hasPrefix("history was rewritten") == true)
            }
            #expect(spread(30, over: replicas.map(\.gatewayPort), connections: 3, request: request).count(200) == 30)
        }
    }
}
