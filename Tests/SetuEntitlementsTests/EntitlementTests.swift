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
