import Foundation
import SetuTestSupport
import Testing

struct TrustCommandTests {
    /// The example without subscriptions as the trust root, and a branch on which ACME subscribes.
    func marketplaceWithBranch() throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        for file in [
            "acme-bank/cbse-class-xii-marksheet.yaml", "acme-bank/pan-verification.yaml", "swift-loans/driving-licence.yaml",
            "swift-loans/vehicle-registration.yaml", "edu-verify/cbse-class-x-certificates.yaml", "edu-verify/cbse-class-xii-marksheet.yaml",
        ] {
            try fixture.remove("subscriptions/" + file)
        }
        try fixture.commitAll("Create the marketplace", author: "Admin <admin@setu.example>")
        try fixture.git("checkout", "-q", "-b", "acme/marksheet")
        try fixture.write(
            "subscriptions/acme-bank/cbse-class-xii-marksheet.yaml",
            try String(contentsOfFile: projectRoot.path + "/subscriptions/acme-bank/cbse-class-xii-marksheet.yaml", encoding: .utf8))
        try fixture.commitAll("Subscribe to Class XII marksheets", author: "ACME Dev <dev@acme.example>")
        try fixture.git("checkout", "-q", "main")
        return fixture
    }

    @Test func planListsTheGainedEntitlementWhenAnApproverMerges() throws {
        let fixture = try marketplaceWithBranch()
        let result = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "registrar@cbse.example", "--today", "2026-11-28")
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                merging acme/marksheet into main, merged by registrar@cbse.example

                entitlements
                  + acme-bank gains cbse/class-xii-marksheet (standard)

                """)
        let anyone = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--today", "2026-11-28")
        #expect(anyone.stdout.contains("  + acme-bank gains cbse/class-xii-marksheet (standard) when merged by an approver of cbse\n"))
    }

    @Test func planShowsTheRefusalWhenSomeoneElseMerges() throws {
        let fixture = try marketplaceWithBranch()
        let result = try setu(
            "plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "director.systems@incometax.example", "--today", "2026-11-28")
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                merging acme/marksheet into main, merged by director.systems@incometax.example

                entitlements
                  ? acme-bank requests cbse/class-xii-marksheet (standard): waiting for an approver of cbse to merge it

                would not take effect
                  subscriptions/acme-bank/cbse-class-xii-marksheet.yaml (pending-approval, by merge by director.systems@incometax.example of commits by dev@acme.example)
                    waiting for an approver of cbse to merge it
                    needs one of: registrar@cbse.example
                    once merged, an approver can approve it in place: setu approve subscriptions/acme-bank/cbse-class-xii-marksheet.yaml

                """)
        let json = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "director.systems@incometax.example", "--format", "json")
        let document = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        let refused = document["refused"] as! [[String: Any]]
        #expect(refused.map { $0["reason"] as! String } == ["pending-approval"])
        #expect(refused[0]["pendingContent"] == nil)
    }

    @Test func approveCommitsTheApprovalOfTheVersionWaitingAndStatusAndPlanSayWhatToRun() throws {
        let fixture = try marketplaceWithBranch()
        let path = "subscriptions/acme-bank/cbse-class-xii-marksheet.yaml"
        try fixture.git("merge", "-q", "--ff-only", "acme/marksheet")
        let blob = try fixture.git("rev-parse", "HEAD:" + path)

        let status = try setu("status", "--repo", fixture.path, "--today", "2026-11-28")
        #expect(status.stdout.contains("    to approve it in place, an approver runs: setu approve \(path) && git push\n"))
        let json = try JSONSerialization.jsonObject(with: Data(try setu("status", "--repo", fixture.path, "--format", "json").stdout.utf8)) as! [String: Any]
        let pending = (json["pendingApprovals"] as! [[String: Any]])[0]
        #expect(pending["blob"] as? String == blob)
        #expect(pending["approve"] as? String == "setu approve \(path) && git push")

        let printed = try setu("approve", path, "--repo", fixture.path, "--print")
        #expect(printed.status == 0)
        #expect(printed.stdout == "Approve acme-bank's subscription to cbse/class-xii-marksheet (standard)\n\nSetu-Approve: \(path) \(blob)\n")

        // The approver approves on a branch of their own; `setu plan` shows what the approval does.
        try fixture.git("checkout", "-q", "-b", "cbse/approve")
        let approved = try run(
            setuExecutable(), ["approve", path, "--repo", fixture.path],
            environment: [
                "GIT_AUTHOR_NAME": "CBSE Registrar", "GIT_AUTHOR_EMAIL": "registrar@cbse.example",
                "GIT_COMMITTER_NAME": "CBSE Registrar", "GIT_COMMITTER_EMAIL": "registrar@cbse.example",
                "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
            ])
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(approved.stdout.hasPrefix("approved acme-bank's subscription to cbse/class-xii-marksheet (standard) at blob \(blob.prefix(12)) in commit "))
        #expect(try fixture.git("log", "-1", "--format=%B").contains("Setu-Approve: \(path) \(blob)"))
        let plan = try setu("plan", "main..cbse/approve", "--repo", fixture.path, "--merged-by", "dev@acme.example", "--today", "2026-11-28")
        #expect(plan.stdout.contains("  + acme-bank gains cbse/class-xii-marksheet (standard)\n"))
        #expect(plan.stdout.contains("approvals in place\n  + approves \(path) at blob \(blob.prefix(12))\n"))

        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--ff-only", "cbse/approve")
        let after = try setu("status", "--repo", fixture.path, "--today", "2026-11-28")
        #expect(after.stdout.contains("  active  acme-bank/cbse-class-xii-marksheet  cbse/class-xii-marksheet  standard  approved by registrar@cbse.example"))
        let again = try setu("approve", path, "--repo", fixture.path)
        #expect(again.status == 1)
        #expect(again.stderr.contains("nothing at \(path) waits for approval at HEAD"))
        #expect(again.stderr.contains("the version on the branch is already in force"))
    }

    @Test func theCatalogShowsWhatIsInForceAndWithPendingWhatIsNot() throws {
        let fixture = try marketplaceWithBranch()
        let acme = "ACME Dev <dev@acme.example>"
        // Someone outside cbse retitles its API, and someone who is not an admin lists a publisher of their own.
        try fixture.edit("catalog/cbse/class-xii-marksheet.yaml", replacing: "title: Class XII Marksheet", with: "title: Free Marksheets")
        try fixture.write(
            "catalog/rogue/publisher.yaml",
            try fixture.read("catalog/incometax/publisher.yaml")
                .replacingOccurrences(of: "name: incometax", with: "name: rogue"))
        try fixture.write(
            "catalog/rogue/pan.yaml",
            try fixture.read("catalog/incometax/pan-verification.yaml")
                .replacingOccurrences(of: "name: pan-verification", with: "name: pan")
                .replacingOccurrences(of: "basePath: /pan/v3", with: "basePath: /rogue/pan"))
        try fixture.commitAll("Retitle and list", author: acme)

        let list = try setu("catalog", "--repo", fixture.path)
        #expect(list.status == 0)
        #expect(list.stdout.contains("Class XII Marksheet"))
        #expect(!list.stdout.contains("Free Marksheets"))
        #expect(!list.stdout.contains("rogue/pan"))
        #expect(list.stdout.contains("7 APIs at HEAD ("))
        let show = try setu("catalog", "show", "cbse/class-xii-marksheet", "--repo", fixture.path)
        #expect(show.stdout.hasPrefix("Class XII Marksheet  (cbse/class-xii-marksheet"))
        let rogue = try setu("catalog", "show", "rogue/pan", "--repo", fixture.path)
        #expect(rogue.status == 2)

        let pending = try setu("catalog", "--repo", fixture.path, "--pending")
        #expect(
            pending.stdout.contains(
                """
                changes not in force
                  catalog/cbse/class-xii-marksheet.yaml  unauthorized (
                """))
        #expect(pending.stdout.contains("    changing catalog/cbse/class-xii-marksheet.yaml needs a member of publisher cbse or a platform admin\n"))
        #expect(pending.stdout.contains("  catalog/rogue/pan.yaml  unauthorized ("))
        let json =
            try JSONSerialization.jsonObject(with: Data(try setu("catalog", "--repo", fixture.path, "--pending", "--format", "json").stdout.utf8))
            as! [String: Any]
        #expect(
            (json["pending"] as! [[String: Any]]).map { $0["path"] as! String }
                == ["catalog/cbse/class-xii-marksheet.yaml", "catalog/rogue/pan.yaml", "catalog/rogue/publisher.yaml"])
        #expect((json["apis"] as! [[String: Any]]).count == 7)

        let byPublisher = try setu("catalog", "--repo", fixture.path, "--publisher", "transport", "--format", "json")
        #expect(
            (try JSONSerialization.jsonObject(with: Data(byPublisher.stdout.utf8)) as! [[String: Any]]).map { $0["id"] as! String }
                == ["transport/driving-licence", "transport/vehicle-registration"])
        let byTag = try setu("catalog", "--repo", fixture.path, "--tag", "KYC", "--format", "json")
        #expect(
            (try JSONSerialization.jsonObject(with: Data(byTag.stdout.utf8)) as! [[String: Any]]).map { $0["id"] as! String }
                == ["incometax/pan-verification"])
        let asWritten = try setu("catalog", "--repo", fixture.path, "--worktree")
        #expect(asWritten.stdout.contains("Free Marksheets"))
        #expect(asWritten.stdout.contains("at work tree, as written"))
    }

    @Test func versionIsPrinted() throws {
        let result = try setu("--version")
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("setu 0."))
    }

    @Test func planListsCatalogChanges() throws {
        let fixture = try marketplaceWithBranch()
        try fixture.git("checkout", "-q", "-b", "cbse/new-api", "main")
        try fixture.write(
            "catalog/cbse/class-x-certificates.yaml",
            try fixture.read("catalog/cbse/class-x-certificates.yaml").replacingOccurrences(of: "version: 3.0.0", with: "version: 3.1.0"))
        try fixture.remove("catalog/datagov/mandi-prices.yaml")
        try fixture.commitAll("Revise Class X", author: "CBSE IT <it@cbse.example>")
        let result = try setu("plan", "main..cbse/new-api", "--repo", fixture.path, "--merged-by", "it@cbse.example")
        #expect(result.status == 1)
        #expect(
            result.stdout.contains(
                """
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
        try fixture.write(
            "catalog/cbse/class-xii-marksheet.yaml",
            try fixture.read("catalog/cbse/class-xii-marksheet.yaml").replacingOccurrences(of: "plans: [standard, premium]", with: "plans: [premium]"))
        try fixture.commitAll("Cut the standard plan", author: "ACME Dev <dev@acme.example>")
        let result = try setu("plan", "main..acme/marksheet", "--repo", fixture.path, "--merged-by", "dev@acme.example", "--format", "github")
        #expect(result.status == 1)
        #expect(
            result.stdout.contains(
                "::error file=catalog/cbse/class-xii-marksheet.yaml,title=trust.owner::changing catalog/cbse/class-xii-marksheet.yaml needs a member of publisher cbse or a platform admin\n"
            ))
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
        #expect(
            result.stdout == """
                marketplace at HEAD (\(head)), trusted from \(root), verification: authors
                replayed 2 commits from the trust root

                entitlements
                  pending  acme-bank/cbse-class-xii-marksheet  cbse/class-xii-marksheet  standard  waiting for an approver of cbse to merge it (registrar@cbse.example); operations hscer

                pending approvals
                  subscriptions/acme-bank/cbse-class-xii-marksheet.yaml  (\(head) by merge by dev@acme.example of commits by dev@acme.example)
                    waiting for an approver of cbse to merge it
                    can approve: registrar@cbse.example
                    to approve it in place, an approver runs: setu approve subscriptions/acme-bank/cbse-class-xii-marksheet.yaml && git push
                    the consumer runs nothing more: ask one of them, or resubmit it on a branch for them to merge

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
