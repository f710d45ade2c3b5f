import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTestSupport
import SetuTrust
import Testing

let admin = "Admin <admin@setu.example>"
let acmeDev = "ACME Dev <dev@acme.example>"
let cbseApprover = "CBSE Registrar <registrar@cbse.example>"
let cbseMember = "CBSE IT <it@cbse.example>"
let taxApprover = "Tax Director <director.systems@incometax.example>"

let marksheetSubscription = """
    apiVersion: setu/v1
    kind: Subscription
    metadata: {name: marksheet}
    spec:
      api: cbse/class-xii-marksheet
      plan: standard
      purpose: Verify the academic records of education-loan applicants.

    """

/// The example marketplace without subscriptions, committed by the admin as the trust root.
func trustRootMarketplace() throws -> GitFixture {
    let fixture = try GitFixture()
    try fixture.copyExampleMarketplace()
    for consumer in ["acme-bank", "swift-loans", "edu-verify"] {
        for file in try FileManager.default.contentsOfDirectory(atPath: fixture.path + "/subscriptions/" + consumer) where file != "consumer.yaml" {
            try fixture.remove("subscriptions/\(consumer)/\(file)")
        }
    }
    try fixture.commitAll("Create the marketplace", author: admin)
    return fixture
}

/// ACME's developer subscribes to the marksheet API on a branch, and `merger` merges it with a merge commit.
func subscribeOnBranch(_ fixture: GitFixture, mergedBy merger: String) throws {
    try fixture.git("checkout", "-q", "-b", "acme/marksheet")
    try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
    try fixture.commitAll("Subscribe to the marksheet API", author: acmeDev)
    try fixture.git("checkout", "-q", "main")
    try fixture.git("merge", "-q", "--no-ff", "-m", "Merge acme/marksheet", "acme/marksheet", author: merger)
}

func entitlements(_ fixture: GitFixture, today: String = "2026-11-28") throws -> EntitlementReport {
    let repository = try Repository(path: fixture.path)
    let state = try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD")).state
    return EntitlementDerivation.derive(state, today: today)
}

func summary(_ report: EntitlementReport) -> [String] {
    report.entitlements.map { "\($0.consumer)/\($0.subscription) \($0.api) \($0.plan) \($0.state.rawValue)" }
}

struct ReplayScenarioTests {
    @Test func subscriptionCommittedStraightToMainWaitsForApproval() throws {
        let fixture = try trustRootMarketplace()
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.commitAll("Subscribe to the marksheet API", author: acmeDev)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard pending"])
        let pending = report.entitlements[0]
        #expect(pending.reason == "waiting for an approver of cbse to merge it")
        #expect(pending.approvers == ["registrar@cbse.example"])
        #expect(report.state.refused["subscriptions/acme-bank/marksheet.yaml"]?.by == "dev@acme.example")
    }

    @Test func approverOfThePublisherMergingActivates() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard active"])
        let merge = try fixture.git("rev-parse", "HEAD")
        #expect(report.entitlements[0].approval == Approval(commit: merge, approver: "registrar@cbse.example"))
        #expect(report.state.refused.isEmpty)
    }

    @Test func approverOfAnotherPublisherMergingLeavesItPending() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: taxApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard pending"])
        #expect(
            report.state.refused["subscriptions/acme-bank/marksheet.yaml"]?.by
                == "merge by director.systems@incometax.example of commits by dev@acme.example")
    }

    @Test func memberOfOnePublisherCannotChangeAnother() throws {
        let fixture = try trustRootMarketplace()
        try fixture.edit("catalog/incometax/pan-verification.yaml", replacing: "plans: [standard, premium, sandbox]", with: "plans: [sandbox]")
        try fixture.commitAll("Cut PAN plans", author: cbseMember)
        let report = try entitlements(fixture)
        let refused = try #require(report.state.refused["catalog/incometax/pan-verification.yaml"])
        #expect(refused.reason == .unauthorized)
        #expect(refused.message == "changing catalog/incometax/pan-verification.yaml needs a member of publisher incometax or a platform admin")
        #expect(report.validation.marketplace.apis["incometax/pan-verification"]?.plans == ["standard", "premium", "sandbox"])
    }

    @Test func adminAdmitsANewPublisherButAMemberCannotMakeThemselvesAdmin() throws {
        let fixture = try trustRootMarketplace()
        try fixture.write(
            "catalog/epfo/publisher.yaml",
            """
            apiVersion: setu/v1
            kind: Publisher
            metadata: {name: epfo}
            spec:
              displayName: Employees' Provident Fund Organisation
              type: document
              contact: {email: apis@epfo.example}
              members: [{email: it@epfo.example}]
              approvers: [{email: commissioner@epfo.example}]

            """)
        try fixture.commitAll("Admit EPFO", author: admin)
        try fixture.edit(
            "policies/platform.yaml", replacing: "    - email: admin@setu.example", with: "    - email: it@cbse.example\n    - email: admin@setu.example")
        try fixture.commitAll("Make myself admin", author: cbseMember)
        let report = try entitlements(fixture)
        #expect(report.validation.marketplace.publishers["epfo"] != nil)
        #expect(report.state.refused["policies/platform.yaml"]?.reason == .unauthorized)
        #expect(report.validation.marketplace.platform?.admins.map(\.email) == ["admin@setu.example"])

        try fixture.write("catalog/rogue/publisher.yaml", "apiVersion: setu/v1\n")
        try fixture.commitAll("A publisher of my own", author: cbseMember)
        #expect(
            try entitlements(fixture).state.refused["catalog/rogue/publisher.yaml"]?.message
                == "changing catalog/rogue/publisher.yaml needs a platform admin, since publisher rogue is new")
    }

    @Test func biggerPlanStaysPendingWhileTheApprovedOneWorksAndDeletionIsImmediate() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        try fixture.edit("subscriptions/acme-bank/marksheet.yaml", replacing: "plan: standard", with: "plan: premium")
        try fixture.commitAll("Upgrade to premium", author: acmeDev)
        #expect(
            summary(try entitlements(fixture)) == [
                "acme-bank/marksheet cbse/class-xii-marksheet standard active",
                "acme-bank/marksheet cbse/class-xii-marksheet premium pending",
            ])
        try fixture.remove("subscriptions/acme-bank/marksheet.yaml")
        try fixture.commitAll("Unsubscribe", author: acmeDev)
        #expect(summary(try entitlements(fixture)) == [])
    }

    @Test func approverRevokesAtOnce() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        try fixture.remove("subscriptions/acme-bank/marksheet.yaml")
        try fixture.commitAll("Revoke", author: cbseApprover)
        #expect(summary(try entitlements(fixture)) == [])
    }

    @Test func invalidChangeKeepsThePreviousVersion() throws {
        let fixture = try trustRootMarketplace()
        try fixture.edit("catalog/cbse/class-xii-marksheet.yaml", replacing: "version: 3.0.0", with: "version: [3]")
        try fixture.commitAll("Break the API", author: cbseMember)
        let report = try entitlements(fixture)
        let refused = try #require(report.state.refused["catalog/cbse/class-xii-marksheet.yaml"])
        #expect(refused.reason == .invalid)
        #expect(refused.rule == "schema.type")
        #expect(report.validation.marketplace.apis["cbse/class-xii-marksheet"]?.version == "3.0.0")
    }

    @Test func expiredSubscription() throws {
        let fixture = try trustRootMarketplace()
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription + "  notAfter: 2026-01-31\n")
        try fixture.commitAll("Subscribe until January", author: cbseApprover)
        // Made by an approver who is not a member of acme-bank: not authorized.
        #expect(try entitlements(fixture).state.refused["subscriptions/acme-bank/marksheet.yaml"]?.reason == .unauthorized)
        try fixture.git("checkout", "-q", "-b", "acme/marksheet", "HEAD~1")
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription + "  notAfter: 2026-01-31\n")
        try fixture.commitAll("Subscribe until January", author: acmeDev)
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-X", "theirs", "-m", "Approve", "acme/marksheet", author: cbseApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard expired"])
        #expect(report.entitlements[0].reason == "expired on 2026-01-31")
    }
}

struct MergeAttributionTests {
    /// A merge of a one-commit branch that also changes a path of its own: the
    /// branch's author counts for what the branch changed, and only for that.
    @Test func aChangeMadeInTheMergeItselfCountsOnlyTheMerger() throws {
        let fixture = try trustRootMarketplace()
        try fixture.git("checkout", "-q", "-b", "acme/marksheet")
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.commitAll("Subscribe to the marksheet API", author: acmeDev)
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "--no-commit", "acme/marksheet", author: cbseApprover)
        try fixture.edit("subscriptions/acme-bank/consumer.yaml", replacing: "displayName: ", with: "displayName: Renamed ")
        try fixture.git("add", "-A", author: cbseApprover)
        try fixture.git("commit", "-q", "-m", "Merge acme/marksheet", author: cbseApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard active"])
        let refused = try #require(report.state.refused["subscriptions/acme-bank/consumer.yaml"])
        #expect(refused.reason == .unauthorized)
        #expect(refused.by == "merge by registrar@cbse.example")
    }
}

struct GatewaySnapshotTests {
    @Test func snapshotHoldsRoutesCredentialsAndActiveEntitlements() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        try fixture.write(
            "subscriptions/acme-bank/pan.yaml",
            marksheetSubscription.replacingOccurrences(of: "cbse/class-xii-marksheet", with: "incometax/pan-verification").replacingOccurrences(
                of: "name: marksheet", with: "name: pan"))
        try fixture.commitAll("Ask for PAN", author: acmeDev)
        let snapshot = GatewaySnapshot(try entitlements(fixture))
        #expect(snapshot.revision == (try fixture.git("rev-parse", "HEAD")))
        #expect(
            snapshot.routes.keys.sorted() == ["/cbse/v3/class-x", "/cbse/v3/class-xii", "/pan/v3", "/transport/v3/driving-licence", "/transport/v3/vehicle"])
        let route = try #require(snapshot.routes["/cbse/v3/class-xii"])
        #expect(route.upstreamURL == "https://api.cbse.example/v3")
        #expect(route.timeoutMilliseconds == 10_000)
        #expect(route.consent == .required)
        #expect(route.operations.compactMap(\.operationId) == ["hpcer", "hscer", "hsmgr"])
        #expect(snapshot.credentials["acme-bank-prod"]?.first?.consumer == "acme-bank")
        #expect(snapshot.credentials["acme-bank-prod"]?.first?.notAfter == "2027-06-30")
        #expect(snapshot.entitlements["acme-bank"]?.keys.sorted() == ["cbse/class-xii-marksheet"])
        #expect(snapshot.inactive["acme-bank"]?["incometax/pan-verification"]?.state == .pending)
        #expect(snapshot.plans["standard"]?.requests == 10)
        #expect(snapshot.consentProviders["meripehchaan"]?.issuer == "https://meripehchaan.example")
        #expect(snapshot.partners["edu-verify"]?.clientId == "EV7Q2K9M")
    }
}
