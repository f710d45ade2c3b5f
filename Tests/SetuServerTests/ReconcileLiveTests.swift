import AsyncHTTPClient
import Foundation
import SetuState
import SetuTestSupport
import Testing

/// Reconciles while serving: approvals, invalid manifests, failures and revocations take
/// effect without a restart.
@Suite(.serialized) struct ReconcileLiveTests {
    let vehicle = "/transport/v3/vehicle/rvcer/certificate"

    func status(_ daemon: RunningDaemon) async throws -> [String: Any] {
        let answer = try await call(daemon.admin + "/status", method: .GET)
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    func reconcile(_ daemon: RunningDaemon) async throws -> Answer {
        try await call(daemon.admin + "/reconcile")
    }

    @Test func anApprovalMergedIntoTheRepositoryIsEnforcedAfterTheNextReconcileAndARevocationDeniesAgain() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let before = try await call(daemon.gateway + vehicle, headers: credentials("swift-loans-prod"), body: "{}")
        #expect(before.problemType == "urn:setu:problem:pending-approval")
        let asGet = try await call(daemon.admin + "/reconcile", method: .GET)
        #expect(asGet.status == 405)
        #expect(asGet.headers["Allow"] == ["POST"])
        let pending = try await status(daemon)
        let approvals = try #require(pending["pendingApprovals"] as? [[String: Any]])
        #expect(approvals.map { $0["path"] as? String } == ["subscriptions/swift-loans/vehicle-registration.yaml"])

        // The consumer resubmits on a branch; the transport approver merges it with a merge commit.
        let fixture = marketplace.fixture
        try fixture.git("switch", "-q", "-c", "swift-loans/vehicle", author: LiveMarketplace.swiftLoans)
        try fixture.edit("subscriptions/swift-loans/vehicle-registration.yaml", replacing: "purpose: ", with: "purpose: Approved on review. ")
        try fixture.commitAll("Resubmit the vehicle registration subscription", author: LiveMarketplace.swiftLoans)
        try fixture.git("switch", "-q", "main", author: LiveMarketplace.transportApprover)
        try fixture.git("merge", "-q", "--no-ff", "-m", "Approve Swift Loans", "swift-loans/vehicle", author: LiveMarketplace.transportApprover)
        let merge = try fixture.git("rev-parse", "HEAD")

        let reconciled = try await reconcile(daemon)
        #expect(reconciled.status == 200)
        let after = try await status(daemon)
        #expect(after["revision"] as? String == merge)
        #expect((after["lastAttempt"] as? [String: Any])?["result"] as? String == "applied")
        let allowed = try await call(daemon.gateway + vehicle, headers: credentials("swift-loans-prod"), body: "{}")
        #expect(allowed.status == 200)

        // The approver revokes: deleting the subscription takes effect at once.
        try fixture.remove("subscriptions/swift-loans/vehicle-registration.yaml")
        try fixture.commitAll("Revoke Swift Loans' vehicle registration access", author: LiveMarketplace.transportApprover)
        _ = try await reconcile(daemon)
        let revoked = try await call(daemon.gateway + vehicle, headers: credentials("swift-loans-prod"), body: "{}")
        #expect(revoked.status == 403)
        #expect(revoked.problemType == "urn:setu:problem:not-subscribed")

        #expect(daemon.stop() == 0)
        let revisions = try hitLines(in: daemon.hitDirectory).map { $0["config_rev"] as? String ?? "" }
        #expect(revisions.count == 3)
        #expect(revisions[1] == merge)
        #expect(Set(revisions).count == 3)
        await upstream.stop()
    }

    @Test func theEntitlementsAreKeptInTheStateOnceReconcilesPauseAndARestartStartsFromThem() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let state = TemporaryDirectory()
        let store = EntitlementStore(state.child("state"))
        let daemon = try await RunningDaemon.start(repo: marketplace.path, state: state)
        let first = try marketplace.fixture.git("rev-parse", "HEAD")
        func kept(_ revision: String) async throws -> Bool {
            for _ in 0..<100 {
                if store.load()?.derived.revision == revision { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        #expect(try await kept(first))

        // A burst of reconciles: the entitlements are written after it, at the last revision.
        let fixture = marketplace.fixture
        try fixture.remove("subscriptions/swift-loans/vehicle-registration.yaml")
        try fixture.commitAll("Withdraw the vehicle registration request", author: LiveMarketplace.swiftLoans)
        _ = try await reconcile(daemon)
        try fixture.remove("subscriptions/acme-bank/pan-verification.yaml")
        try fixture.commitAll("Revoke Acme Bank's PAN verification", author: LiveMarketplace.acmeDev)
        let last = try fixture.git("rev-parse", "HEAD")
        _ = try await reconcile(daemon)
        #expect(try await kept(last))
        let before = try await status(daemon)
        #expect(daemon.stop() == 0)

        // A restart finds them as they were and derives nothing again.
        let restarted = try await RunningDaemon.start(repo: marketplace.path, state: state)
        let after = try await status(restarted)
        #expect(after["revision"] as? String == last)
        #expect(after["counts"] as? [String: Int] == before["counts"] as? [String: Int])
        #expect(restarted.stop() == 0)
        #expect(restarted.stderr.contains("entitlements=updated"))
        #expect(restarted.stderr.contains("replayed=0"))
        await upstream.stop()
    }

    @Test func anInvalidManifestKeepsThePreviousVersionServingAndStatusNamesTheFile() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let fixture = marketplace.fixture
        try fixture.edit("subscriptions/acme-bank/pan-verification.yaml", replacing: "plan: premium", with: "plan: [premium")
        try fixture.commitAll("Break the PAN subscription", author: LiveMarketplace.acmeDev)
        let reconciled = try await reconcile(daemon)
        #expect(reconciled.status == 200)
        let still = try await call(daemon.gateway + "/pan/v3/pancr/certificate", headers: credentials("acme-bank-prod"), body: "{}")
        #expect(still.status == 200)
        let current = try await status(daemon)
        let invalid = try #require(current["invalid"] as? [[String: Any]])
        #expect(invalid.count == 1)
        #expect(invalid.first?["path"] as? String == "subscriptions/acme-bank/pan-verification.yaml")
        #expect((invalid.first?["message"] as? String)?.isEmpty == false)
        let conditions = try #require(current["conditions"] as? [[String: Any]])
        let reconciledCondition = try #require(conditions.first { $0["type"] as? String == "Reconciled" })
        #expect((reconciledCondition["message"] as? String)?.contains("subscriptions/acme-bank/pan-verification.yaml: ") == true)
        // The status file is written once reconciles pause.
        var file = ""
        for _ in 0..<100 where !file.contains("subscriptions/acme-bank/pan-verification.yaml") {
            try await Task.sleep(for: .milliseconds(50))
            file = (try? String(contentsOfFile: daemon.state.child("state/status.json"), encoding: .utf8)) ?? ""
        }
        #expect(file.contains("subscriptions/acme-bank/pan-verification.yaml"))
        await upstream.stop()
    }

    @Test func aBadPlanReferenceIsHeldBackWhileTheAPIServesAndAWithdrawnPlanEndsItsEntitlementsInTheLog() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let fixture = marketplace.fixture
        let marksheet = "catalog/cbse/class-xii-marksheet.yaml"
        let cbseMember = "CBSE IT <it@cbse.example>"
        let certificate = "/cbse/v3/class-xii/hscer/certificate"

        try fixture.edit(marksheet, replacing: "plans: [standard, premium]", with: "plans: [gold]")
        try fixture.commitAll("Offer gold", author: cbseMember)
        let reconciled = try await reconcile(daemon)
        #expect(reconciled.status == 200)
        let served = try await call(daemon.gateway + certificate, headers: credentials("acme-bank-prod"), body: "{}")
        #expect(served.status == 200)
        let current = try await status(daemon)
        let invalid = try #require(current["invalid"] as? [[String: Any]])
        #expect(invalid.map { $0["path"] as? String } == [marksheet])
        #expect(invalid.first?["rule"] as? String == "ref.plan")
        let entitlements = try #require(current["entitlements"] as? [[String: Any]])
        #expect(entitlements.filter { $0["api"] as? String == "cbse/class-xii-marksheet" }.map { $0["state"] as? String } == ["active", "active"])

        try fixture.edit(marksheet, replacing: "plans: [gold]", with: "plans: [standard]")
        try fixture.commitAll("Offer the standard plan only", author: cbseMember)
        _ = try await reconcile(daemon)
        let ended = try await call(daemon.gateway + certificate, headers: credentials("edu-verify-prod"), body: "{}")
        #expect(ended.status == 403)
        let kept = try await call(daemon.gateway + certificate, headers: credentials("acme-bank-prod"), body: "{}")
        #expect(kept.status == 200)
        #expect(daemon.stop() == 0)
        let log = daemon.stderr.split(separator: "\n").filter { $0.contains("entitlement ended") }
        #expect(log.count == 1)
        #expect(log.first?.contains("consumer=edu-verify") == true)
        #expect(log.first?.contains("plan=premium") == true)
        await upstream.stop()
    }

    @Test func aFailedReconcileKeepsTheLastGoodSnapshotServingAndSaysWhy() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let serving = try await status(daemon)["revision"] as? String
        try marketplace.fixture.git("branch", "-q", "-m", "main", "trunk")
        let failed = try await reconcile(daemon)
        #expect(failed.status == 500)
        let current = try await status(daemon)
        #expect(current["ready"] as? Bool == true)
        #expect(current["revision"] as? String == serving)
        let attempt = try #require(current["lastAttempt"] as? [String: Any])
        #expect(attempt["result"] as? String == "failed")
        #expect((attempt["error"] as? String)?.hasPrefix("branch 'main' not found in \(marketplace.path)") == true)
        let still = try await call(daemon.gateway + "/pan/v3/pancr/certificate", headers: credentials("acme-bank-prod"), body: "{}")
        #expect(still.status == 200)
        let metrics = try await call(daemon.admin + "/metrics", method: .GET)
        #expect(metrics.body.contains(#"setu_reconciles_total{result="failure"} 1"#))
        #expect(metrics.body.contains(#"setu_config_revision_info{revision="\#(serving ?? "")"} 1"#))
        await upstream.stop()
    }

    @Test func sighupReconcilesAndAdminEndpointsAnswer() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        #expect(try await call(daemon.admin + "/healthz", method: .GET).body == "ok\n")
        let ready = try await call(daemon.admin + "/readyz", method: .GET)
        #expect(ready.status == 200)
        try marketplace.fixture.remove("subscriptions/acme-bank/pan-verification.yaml")
        let head = try marketplace.fixture.commitAll("Unsubscribe from PAN verification", author: LiveMarketplace.acmeDev)
        daemon.signal(SIGHUP)
        var revision: String?
        for _ in 0..<100 where revision != head {
            try await Task.sleep(for: .milliseconds(50))
            revision = try await status(daemon)["revision"] as? String
        }
        #expect(revision == head)
        let gone = try await call(daemon.gateway + "/pan/v3/pancr/certificate", headers: credentials("acme-bank-prod"), body: "{}")
        #expect(gone.problemType == "urn:setu:problem:not-subscribed")
        let metrics = try await call(daemon.admin + "/metrics", method: .GET)
        #expect(metrics.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
        for series in [
            #"setu_gateway_requests_total{api="incometax/pan-verification",status_class="4xx",decision="deny:not-subscribed"} 1"#,
            #"setu_entitlements_count{state="pending"} 1.0"#, "setu_hits_dropped_total 0",
            #"setu_reconciles_total{result="success"}"#, "setu_reconcile_duration_seconds_count",
            #"setu_gateway_request_duration_seconds_bucket{api="incometax/pan-verification",le="+Inf"} 1"#,
        ] {
            #expect(metrics.body.contains(series), "missing \(series)")
        }
        await upstream.stop()
    }

    @Test func aRemoteIsMirroredAndAForcePushIsDetectedAndReplayed() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: "file://" + marketplace.path)
        #expect(FileManager.default.fileExists(atPath: daemon.state.child("state/mirror.git/HEAD")))
        let fixture = marketplace.fixture
        try fixture.git("reset", "-q", "--hard", "HEAD~1")
        try fixture.write(
            "subscriptions/swift-loans/vehicle-registration.yaml",
            try fixture.git("show", "HEAD@{1}:subscriptions/swift-loans/vehicle-registration.yaml") + "\n")
        let rewritten = try fixture.commitAll("Subscribe to vehicle registration, again", author: LiveMarketplace.swiftLoans)
        _ = try await reconcile(daemon)
        let current = try await status(daemon)
        #expect(current["revision"] as? String == rewritten)
        #expect((current["rewrittenHistory"] as? String)?.hasPrefix("history was rewritten") == true)
        try FileManager.default.moveItem(atPath: marketplace.path + "/.git", toPath: marketplace.path + "/.git-moved")
        let failed = try await reconcile(daemon)
        #expect(failed.status == 500)
        let attempt = try #require(try await status(daemon)["lastAttempt"] as? [String: Any])
        #expect((attempt["error"] as? String)?.hasPrefix("cannot fetch from 'file://\(marketplace.path)'") == true)
        try FileManager.default.moveItem(atPath: marketplace.path + "/.git-moved", toPath: marketplace.path + "/.git")
        await upstream.stop()
    }
}
