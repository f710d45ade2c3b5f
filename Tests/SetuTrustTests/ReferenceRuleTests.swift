import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTestSupport
import SetuTrust
import Testing

let eduVerifyMember = "EduVerify Platform <platform@eduverify.example>"

/// The example marketplace with its subscriptions, committed by the admin as the trust root.
func exampleMarketplace() throws -> GitFixture {
    let fixture = try GitFixture()
    try fixture.copyExampleMarketplace()
    try fixture.commitAll("Create the marketplace", author: admin)
    return fixture
}

func replayedState(_ fixture: GitFixture) throws -> EffectiveState {
    let repository = try Repository(path: fixture.path)
    return try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD")).state
}

/// A change that would leave the effective state with a broken reference does not
/// take effect: the path keeps its last authorized, valid version (DESIGN.md §4).
struct ReferenceRuleTests {
    let marksheet = "catalog/cbse/class-xii-marksheet.yaml"

    @Test func anUndefinedPlanIsHeldBackAndTheSubscribersKeepTheirAccess() throws {
        let fixture = try exampleMarketplace()
        try fixture.edit(marksheet, replacing: "plans: [standard, premium]", with: "plans: [gold]")
        let bad = try fixture.commitAll("Offer gold", author: cbseMember)
        let state = try replayedState(fixture)
        let refused = try #require(state.refused[marksheet])
        #expect(refused.reason == .invalid)
        #expect(refused.rule == "ref.plan")
        #expect(refused.commit == bad)
        #expect(refused.message.contains("'gold'"))
        #expect(String(decoding: state.files[marksheet]!.content, as: UTF8.self).contains("plans: [standard, premium]"))
        let report = EntitlementDerivation.derive(state, today: "2026-11-28")
        let subscribers = report.entitlements.filter { $0.api == "cbse/class-xii-marksheet" }.map { "\($0.consumer) \($0.state.rawValue)" }
        #expect(subscribers == ["acme-bank active", "edu-verify active"])
    }

    @Test func aLaterCommitThatFixesTheHeldBackFileTakesEffect() throws {
        let fixture = try exampleMarketplace()
        try fixture.edit(marksheet, replacing: "plans: [standard, premium]", with: "plans: [standard, premium, gold]")
        try fixture.commitAll("Offer gold", author: cbseMember)
        #expect(try replayedState(fixture).refused[marksheet]?.rule == "ref.plan")
        try fixture.edit(marksheet, replacing: "plans: [standard, premium, gold]", with: "plans: [standard, premium, sandbox]")
        let fix = try fixture.commitAll("Offer the sandbox instead", author: cbseMember)
        let state = try replayedState(fixture)
        #expect(state.refused[marksheet] == nil)
        #expect(state.files[marksheet]?.commit == fix)
    }

    @Test func withdrawingAPlanThatExistsEndsTheEntitlementsThatUseIt() throws {
        let fixture = try exampleMarketplace()
        try fixture.git("checkout", "-q", "-b", "cbse/standard-only")
        try fixture.edit(marksheet, replacing: "plans: [standard, premium]", with: "plans: [standard]")
        try fixture.commitAll("Withdraw premium", author: cbseMember)
        // `setu plan` names the entitlement the withdrawal ends.
        let repository = try Repository(path: fixture.path)
        let plan = try MergePlanner.plan(
            repository, base: repository.resolveCommit("main"), head: repository.resolveCommit("cbse/standard-only"),
            mergedBy: "it@cbse.example", trustRoot: nil, stateDirectory: nil, today: "2026-11-28")
        #expect(plan.refused.isEmpty)
        #expect(plan.entitlementChanges.map(\.sentence) == ["edu-verify loses cbse/class-xii-marksheet (premium)"])

        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--ff-only", "cbse/standard-only")
        let state = try replayedState(fixture)
        #expect(state.refused[marksheet] == nil)
        let report = EntitlementDerivation.derive(state, today: "2026-11-28")
        let ended = try #require(report.entitlements.first { $0.consumer == "edu-verify" && $0.api == "cbse/class-xii-marksheet" })
        #expect(ended.state == .invalid)
        #expect(ended.reason?.contains("premium") == true)
        #expect(report.entitlements.contains { $0.consumer == "acme-bank" && $0.api == "cbse/class-xii-marksheet" && $0.state == .active })
    }

    @Test func aBasePathUnderAnotherAPIsIsRefused() throws {
        let fixture = try exampleMarketplace()
        let path = "catalog/cbse/class-xii-supplementary.yaml"
        try fixture.write(
            path,
            try fixture.read(marksheet)
                .replacingOccurrences(of: "name: class-xii-marksheet", with: "name: class-xii-supplementary")
                .replacingOccurrences(of: "basePath: /cbse/v3/class-xii", with: "basePath: /cbse/v3/class-xii/supplementary"))
        try fixture.commitAll("List the supplementary results", author: cbseMember)
        let refused = try #require(try replayedState(fixture).refused[path])
        #expect(refused.rule == "api.base-path")
        #expect(refused.message.contains("lies under the base path '/cbse/v3/class-xii'"))
    }

    @Test func aBasePathThatContainsAnotherAPIsIsRefusedThoughTheClashIsReportedOnTheOther() throws {
        let fixture = try exampleMarketplace()
        let path = "catalog/cbse/all.yaml"
        try fixture.write(
            path,
            try fixture.read(marksheet)
                .replacingOccurrences(of: "name: class-xii-marksheet", with: "name: all")
                .replacingOccurrences(of: "basePath: /cbse/v3/class-xii", with: "basePath: /cbse"))
        try fixture.commitAll("One base path for everything", author: cbseMember)
        let state = try replayedState(fixture)
        let refused = try #require(state.refused[path])
        #expect(refused.rule == "api.base-path")
        #expect(state.files[path] == nil)
    }

    @Test func aSubscriptionToAnUnknownAPIIsInvalidNotPending() throws {
        let fixture = try exampleMarketplace()
        let path = "subscriptions/acme-bank/marks.yaml"
        try fixture.write(
            path,
            marksheetSubscription.replacingOccurrences(of: "name: marksheet", with: "name: marks")
                .replacingOccurrences(of: "cbse/class-xii-marksheet", with: "cbse/class-xii-marks"))
        try fixture.commitAll("Subscribe", author: acmeDev)
        let refused = try #require(try replayedState(fixture).refused[path])
        #expect(refused.reason == .invalid)
        #expect(refused.rule == "ref.api")
        #expect(refused.message.contains("did you mean 'cbse/class-xii-marksheet'"))
    }

    @Test func aPartnerMayNotSubscribeToAServiceAPI() throws {
        let fixture = try exampleMarketplace()
        let path = "subscriptions/edu-verify/pan.yaml"
        try fixture.git("checkout", "-q", "-b", "edu/pan")
        try fixture.write(
            path,
            """
            apiVersion: setu/v1
            kind: Subscription
            metadata: {name: pan}
            spec:
              api: incometax/pan-verification
              plan: standard

            """)
        try fixture.commitAll("Subscribe to PAN verification", author: eduVerifyMember)
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-m", "Merge edu/pan", "edu/pan", author: taxApprover)
        let state = try replayedState(fixture)
        let refused = try #require(state.refused[path])
        #expect(refused.reason == .invalid)
        #expect(refused.rule == "subscription.consumer-type")
        #expect(state.files[path] == nil)
    }

    @Test func removingAPlanThatAPIsOfferIsRefused() throws {
        let fixture = try exampleMarketplace()
        let plans = try fixture.read("policies/plans.yaml")
        let premium = try #require(plans.range(of: "apiVersion: setu/v1\nkind: Plan\nmetadata:\n  name: premium"))
        let end = plans[premium.upperBound...].range(of: "---\n").map(\.upperBound) ?? plans.endIndex
        try fixture.write("policies/plans.yaml", String(plans[..<premium.lowerBound] + plans[end...]))
        try fixture.commitAll("Retire the premium plan", author: admin)
        let state = try replayedState(fixture)
        let refused = try #require(state.refused["policies/plans.yaml"])
        #expect(refused.rule == "ref.plan")
        #expect(refused.message.hasPrefix("would leave catalog/cbse/class-xii-marksheet.yaml invalid"))
        #expect(String(decoding: state.files["policies/plans.yaml"]!.content, as: UTF8.self).contains("name: premium"))
    }

    @Test func deletingAPublisherWhoseAPIsAreListedIsRefused() throws {
        let fixture = try exampleMarketplace()
        try fixture.remove("catalog/incometax/publisher.yaml")
        try fixture.commitAll("Remove income tax", author: admin)
        let state = try replayedState(fixture)
        #expect(state.refused["catalog/incometax/publisher.yaml"]?.rule == "ref.publisher")
        #expect(state.files["catalog/incometax/publisher.yaml"] != nil)
    }

    @Test func aNewConsumerWithAnotherConsumersClientIdIsRefused() throws {
        let fixture = try exampleMarketplace()
        let path = "subscriptions/zeta-corp/consumer.yaml"
        try fixture.write(
            path,
            try fixture.read("subscriptions/acme-bank/consumer.yaml")
                .replacingOccurrences(of: "name: acme-bank", with: "name: zeta-corp"))
        try fixture.commitAll("Admit Zeta Corp", author: admin)
        let state = try replayedState(fixture)
        let refused = try #require(state.refused[path])
        #expect(refused.reason == .invalid)
        #expect(refused.rule == "credential.client-id")
        #expect(state.files[path] == nil)
    }
}
