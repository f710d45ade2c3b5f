import Foundation
import SetuEntitlements
import SetuManifest
import SetuTestSupport
import Testing

/// The example marketplace as an effective state at `revision`, every file in force as the trust root's.
func exampleState(dropping dropped: Set<String> = [], revision: String = "r1") throws -> EffectiveState {
    var files: [String: EffectiveFile] = [:]
    let validator = MarketplaceValidator()
    for folder in ["catalog", "policies", "subscriptions"] {
        let root = projectRoot.appendingPathComponent(folder)
        let enumerator = try #require(FileManager.default.enumerator(atPath: root.path))
        for case let relative as String in enumerator where relative.hasSuffix(".yaml") {
            let path = folder + "/" + relative
            guard !dropped.contains(path) else { continue }
            let bytes = [UInt8](try Data(contentsOf: root.appendingPathComponent(relative)))
            files[path] = EffectiveFile(
                file: validator.prepare(path: path, bytes: bytes), blob: "", commit: "root",
                authorizedBy: "trust root",
                approval: MarketplacePath.isSubscription(path) ? Approval(commit: "root", approver: "trust root") : nil)
        }
    }
    return EffectiveState(revision: revision, files: files)
}

struct EntitlementDerivationTests {
    @Test func theExampleMarketplacesEntitlementsAreActiveUntilTheirEnd() throws {
        let report = EntitlementDerivation.derive(try exampleState(), today: "2026-11-28")
        #expect(report.entitlements.count == 6)
        #expect(report.entitlements.allSatisfy { $0.state == .active })
        let expired = EntitlementDerivation.derive(try exampleState(), today: "2099-01-01")
        #expect(expired.entitlements.contains { $0.state == .expired && $0.reason?.hasPrefix("expired on ") == true })
    }

    @Test func anUpdateForOneConsumersSubscriptionsEqualsAFullDerivation() throws {
        let before = DerivedEntitlements(EntitlementDerivation.derive(try exampleState(), today: "2026-11-28"), today: "2026-11-28")
        let removed = "subscriptions/acme-bank/pan-verification.yaml"
        let after = try exampleState(dropping: [removed], revision: "r2")
        let updated = try #require(EntitlementDerivation.update(before, to: after, touched: [removed], today: "2026-11-28"))
        #expect(updated == DerivedEntitlements(EntitlementDerivation.derive(after, today: "2026-11-28"), today: "2026-11-28"))
        #expect(!updated.entitlements.contains { $0.path == removed })
        // A change beyond subscriptions can reach any entitlement: no update, a derivation.
        #expect(EntitlementDerivation.update(before, to: after, touched: ["policies/plans.yaml"], today: "2026-11-28") == nil)
    }
}

struct GatewaySnapshotTests {
    @Test func replacingOneConsumersEntitlementsKeepsTheCatalogAndMatchesAWholeSnapshot() throws {
        let first = GatewaySnapshot(EntitlementDerivation.derive(try exampleState(), today: "2026-11-28"))
        let removed = "subscriptions/acme-bank/pan-verification.yaml"
        let report = EntitlementDerivation.derive(try exampleState(dropping: [removed], revision: "r2"), today: "2026-11-28")
        let whole = GatewaySnapshot(report)
        let replaced = first.replacingEntitlements(of: ["acme-bank"], from: report.entitlements, revision: "r2")
        #expect(replaced.entitlements == whole.entitlements)
        #expect(replaced.inactive == whole.inactive)
        #expect(replaced.revision == "r2")
        #expect(replaced.catalogID == first.catalogID)
        #expect(replaced.entitlementsID != first.entitlementsID)
        #expect(replaced.changedFrom?.entitlementsID == first.entitlementsID)
        #expect(replaced.changedFrom?.consumers == ["acme-bank"])
        #expect(replaced.entitlements["acme-bank"]?["incometax/pan-verification"] == nil)
        #expect(replaced.entitlements["swift-loans"] == first.entitlements["swift-loans"])
        let all = first.replacingEntitlements(of: nil, from: report.entitlements, revision: "r2")
        #expect(all.entitlements == whole.entitlements)
        #expect(all.changedFrom == nil)
    }
}

struct EntitlementListTests {
    func entitlement(_ consumer: String, _ subscription: String, _ state: Entitlement.State = .active) -> Entitlement {
        Entitlement(
            consumer: consumer, subscription: subscription, api: "cbse/\(subscription)", plan: "standard", operations: nil,
            notAfter: nil, state: state, reason: nil, approval: nil, approvers: [],
            path: "subscriptions/\(consumer)/\(subscription).yaml", requestedIn: nil)
    }

    @Test func itListsEntitlementsByConsumerSubscriptionAndStateWhateverTheOrderGiven() throws {
        let given = [
            entitlement("zeta", "a"), entitlement("acme", "b", .pending), entitlement("acme", "b"), entitlement("mid", "x"),
            entitlement("acme", "a"),
        ]
        let list = EntitlementList(given)
        #expect(list.count == 5)
        #expect(
            list.map { "\($0.consumer)/\($0.subscription)/\($0.state)" } == [
                "acme/a/active", "acme/b/active", "acme/b/pending", "mid/x/active", "zeta/a/active",
            ])
        #expect(list.indices.map { list[$0] } == Array(list))
        #expect(list.entitlements(of: "acme").map(\.subscription) == ["a", "b", "b"])
        #expect(list.entitlements(of: "nobody").isEmpty)
        #expect(list.counts == [.active: 4, .pending: 1, .expired: 0, .invalid: 0])
    }

    @Test func replacingOneConsumersEntitlementsLeavesOtherCopiesAsTheyWere() throws {
        var list = EntitlementList([entitlement("acme", "a"), entitlement("zeta", "z")])
        let served = list
        list.replace(entitlementsOf: "mid", with: [entitlement("mid", "n"), entitlement("mid", "m")])
        list.replace(entitlementsOf: "acme", with: [])
        list.replace(entitlementsOf: "zeta", with: [entitlement("zeta", "y", .pending)])
        list.replace(entitlementsOf: "gone", with: [])
        #expect(list.map { "\($0.consumer)/\($0.subscription)" } == ["mid/m", "mid/n", "zeta/y"])
        #expect(list[2].state == .pending)
        #expect(list == EntitlementList(Array(list).reversed()))
        #expect(served.map { "\($0.consumer)/\($0.subscription)" } == ["acme/a", "zeta/z"])
    }

    @Test func itIsEncodedAsAFlatListAndDecodedBack() throws {
        let list = EntitlementList([entitlement("zeta", "a"), entitlement("acme", "b")])
        let data = try JSONEncoder().encode(list)
        let flat = try JSONDecoder().decode([Entitlement].self, from: data)
        #expect(flat == Array(list))
        #expect(try JSONDecoder().decode(EntitlementList.self, from: data) == list)
    }
}
