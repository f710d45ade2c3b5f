import Foundation
import SetuTestSupport
import Testing

struct TrustCommandTests {
    /// The example without subscriptions as the trust root, and a branch on which ACME subscribes.
    func marketplaceWithBranch() throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        for file in ["acme-bank/cbse-class-xii-marksheet.yaml", "acme-bank/pan-verification.yaml", "swift-loans/driving-licence.yaml",
                     "swift-loans/vehicle-registration.yaml", "edu-verify/cbse-class-x-certificates.yaml", "edu-verify/cbse-class-xii-marksheet.yaml"] {
            try fixture.remove("subscriptions/" + file)
        }
        try fixture.commitAll("Create the marketplace", author: "Admin <admin@setu.example>")
        try fixture.git("checkout", "-q", "-b", "acme/marksheet")
        try fixture.write("subscriptions/acme-bank/cbse-class-xii-marksheet.yaml", try String(contentsOfFile: projectRoot.path + "/subscriptions/acme-bank/cbse-class-xii-marksheet.yaml", encoding: .utf8))
        try fixture.commitAll("Subscribe to Class XII marksheets", author: "ACME Dev <dev@acme.example>")
        try fixture.git("checkout", "-q", "main")
        return fixture
    }

    @Test func planListsTheGainedEntitlementWhenAnApproverMerges() throws {
        let fixture = try marketplaceWithBranch()
        let result = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "registrar@cbse.example", "--today", "2026-11-28")
        #expect(result.status == 0)
        #expect(result.stdout == """
            merging acme/marksheet into main, merged by registrar@cbse.example

            entitlements
              + acme-bank gains cbse/class-xii-marksheet (standard)

            """)
        let anyone = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--today", "2026-11-28")
        #expect(anyone.stdout.contains("  + acme-bank gains cbse/class-xii-marksheet (standard) when merged by an approver of cbse\n"))
    }

    @Test func planShowsTheRefusalWhenSomeoneElseMerges() throws {
        let fixture = try marketplaceWithBranch()
        let result = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "director.systems@incometax.example", "--today", "2026-11-28")
        #expect(result.status == 0)
        #expect(result.stdout == """
            merging acme/marksheet into main, merged by director.systems@incometax.example

            entitlements
              ? acme-bank requests cbse/class-xii-marksheet (standard): waiting for an approver of cbse to merge it

            would not take effect
              subscriptions/acme-bank/cbse-class-xii-marksheet.yaml (pending-approval, by merge by director.systems@incometax.example of commits by dev@acme.example)
                waiting for an approver of cbse to merge it
                needs one of: registrar@cbse.example

            """)
        let json = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "director.systems@incometax.example", "--format", "json")
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        let refused = document["refused"] as! [[String: Any]]
        #expect(refused.map { $0["reason"] as! String } == ["pending-approval"])
        #expect(refused[0]["pendingContent"] == nil)
    }

    @Test func planListsCatalogChanges() throws {
        let fixture = try marketplaceWithBranch()
        try fixture.git("checkout", "-q", "-b", "cbse/new-api", "main")
        try fixture.write("catalog/cbse/class-x-certificates.yaml", try fixture.read("catalog/cbse/class-x-certificates.yaml").replacingOccurrences(of: "version: 3.0.0", with: "version: 3.1.0"))
        try fixture.remove("catalog/datagov/mandi-prices.yaml")
        try fixture.commitAll("Revise Class X", author: "CBSE IT <it@cbse.example>")
        let result = try setu("plan", "main..cbse/new-api", "--repo", fixture.path, "--merged-by", "it@cbse.example")
        #expect(result.status == 1)
        #expect(result.stdout.contains("""
            catalog
              ~ API cbse/class-x-certificates changed

            would not take effect
              catalog/datagov/mandi-prices.yaml (unauthorized, by merge by it@cbse.example of commits by it@cbse.example)
                deleting catalog/datagov/mandi-prices.yaml needs a member of publisher datagov or a platform admin
            """))
    }

    @Test func planExitsOneForAnUnauthorizedChange() throws {
        let fixture = try marketplaceWithBranch()
        try fixture.git("checkout", "-q", "acme/marksheet")
        try fixture.write("catalog/cbse/class-xii-marksheet.yaml", try fixture.read("catalog/cbse/class-xii-marksheet.yaml").replacingOccurrences(of: "plans: [standard, premium]", with: "plans: [premium]"))
        try fixture.commitAll("Cut the standard plan", author: "ACME Dev <dev@acme.example>")
        let result = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "dev@acme.example", "--format", "github")
        #expect(result.status == 1)
        #expect(result.stdout.contains("::error file=catalog/cbse/class-xii-marksheet.yaml,title=trust.owner::changing catalog/cbse/class-xii-marksheet.yaml needs a member of publisher cbse or a platform admin\n"))
        let bad = try setu("plan", "main", "--repo", fixture.path)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("the range must be BASE..HEAD"))
    }

    @Test func statusShowsPendingApprovalsAndWhoCanApprove() throws {
        let fixture = try marketplaceWithBranch()
        try fixture.git("merge", "-q", "--no-ff", "-m", "Merge without approval", "acme/marksheet", author: "ACME Dev <dev@acme.example>")
        let state = TemporaryDirectory()
        let result = try setu("status", "--repo", fixture.path, "--state", state.path, "--today", "2026-11-28")
        #expect(result.status == 0)
        let head = String(try fixture.git("rev-parse", "HEAD").prefix(7)), root = String(try fixture.git("rev-parse", "HEAD~1").prefix(7))
        #expect(result.stdout == """
            marketplace at HEAD (\(head)), trusted from \(root), verification: authors
            replayed 2 commits from the trust root

            entitlements
              pending  acme-bank/cbse-class-xii-marksheet  cbse/class-xii-marksheet  standard  waiting for an approver of cbse to merge it (registrar@cbse.example); operations hscer

            pending approvals
              subscriptions/acme-bank/cbse-class-xii-marksheet.yaml  (\(head) by merge by dev@acme.example of commits by dev@acme.example)
                waiting for an approver of cbse to merge it
                can approve: registrar@cbse.example

            0 active, 1 pending, 0 expired, 0 invalid; 0 unauthorized and 0 invalid changes

            """)
        let badDate = try setu("status", "--repo", fixture.path, "--state", state.path, "--today", "28-11-2026")
        #expect(badDate.status == 2)
        #expect(badDate.stderr.contains("--today must be a date written YYYY-MM-DD"))
        #expect(badDate.stdout.isEmpty)
        let again = try setu("status", "--repo", fixture.path, "--state", state.path, "--format", "json")
        let document = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as! [String: Any]
        #expect(document["incremental"] as? Bool == true)
        #expect(document["replayedCommits"] as? Int == 0)
    }

    @Test func statusSaysWhichStateFileItCannotWrite() throws {
        let fixture = try marketplaceWithBranch()
        let state = TemporaryDirectory()
        // A file where the state directory should be.
        let blocked = state.child("not-a-folder")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocked))
        let noFolder = try setu("status", "--repo", fixture.path, "--state", blocked)
        #expect(noFolder.status == 2)
        #expect(noFolder.stderr.hasPrefix("error: cannot write the replay state to \(blocked)/trust/replay.bin"))

        // A folder where the entitlements file should be: the replay is kept, the entitlements are not.
        let folder = state.child("state")
        try FileManager.default.createDirectory(atPath: folder + "/trust/entitlements.bin/inside", withIntermediateDirectories: true)
        let noEntitlements = try setu("status", "--repo", fixture.path, "--state", folder)
        #expect(noEntitlements.status == 2)
        #expect(noEntitlements.stderr.hasPrefix("error: cannot write the entitlements to \(folder)/trust/entitlements.bin: cannot rename"))
        #expect(noEntitlements.stdout.isEmpty)
        #expect(FileManager.default.fileExists(atPath: folder + "/trust/replay.bin"))

        try FileManager.default.removeItem(atPath: folder + "/trust/entitlements.bin")
        let fixed = try setu("status", "--repo", fixture.path, "--state", folder, "--format", "json")
        #expect(fixed.status == 0)
        let document = try JSONSerialization.jsonObject(with: Data(fixed.stdout.utf8)) as! [String: Any]
        #expect(document["incremental"] as? Bool == true)
    }
}
