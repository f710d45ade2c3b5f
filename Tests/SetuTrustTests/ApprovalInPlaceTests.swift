import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTestSupport
import SetuTrust
import Testing

/// A subscription committed straight to the branch is approved in place by an
/// approver's commit carrying `Setu-Approve: <path> <blob>` (DESIGN.md §4).
struct ApprovalInPlaceTests {
    let path = "subscriptions/acme-bank/marksheet.yaml"

    /// ACME's developer commits the marksheet subscription to main; returns its blob id.
    func pendingOnMain(_ fixture: GitFixture) throws -> String {
        try fixture.write(path, marksheetSubscription)
        try fixture.commitAll("Subscribe to the marksheet API", author: acmeDev)
        return try fixture.git("rev-parse", "HEAD:" + path)
    }

    func approve(_ fixture: GitFixture, blob: String, author: String) throws -> String {
        try fixture.commitAll("Approve ACME's marksheet subscription\n\nSetu-Approve: \(path) \(blob)", author: author)
    }

    @Test func anApproversEmptyCommitNamingTheBlobActivatesIt() throws {
        let fixture = try trustRootMarketplace()
        let blob = try pendingOnMain(fixture)
        #expect(summary(try entitlements(fixture)) == ["acme-bank/marksheet cbse/class-xii-marksheet standard pending"])
        let approval = try approve(fixture, blob: blob, author: cbseApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard active"])
        #expect(report.entitlements[0].approval == Approval(commit: approval, approver: "registrar@cbse.example"))
        #expect(report.state.refused.isEmpty)
    }

    @Test func anApprovalOfAnOlderBlobDoesNotApproveTheNewerOne() throws {
        let fixture = try trustRootMarketplace()
        let first = try pendingOnMain(fixture)
        try fixture.edit(path, replacing: "plan: standard", with: "plan: premium")
        try fixture.commitAll("Ask for premium instead", author: acmeDev)
        _ = try approve(fixture, blob: first, author: cbseApprover)
        #expect(summary(try entitlements(fixture)) == ["acme-bank/marksheet cbse/class-xii-marksheet premium pending"])
    }

    @Test func anEditAfterTheApprovalWaitsForANewOne() throws {
        let fixture = try trustRootMarketplace()
        let blob = try pendingOnMain(fixture)
        _ = try approve(fixture, blob: blob, author: cbseApprover)
        try fixture.edit(path, replacing: "plan: standard", with: "plan: premium")
        try fixture.commitAll("Ask for premium", author: acmeDev)
        #expect(
            summary(try entitlements(fixture)) == [
                "acme-bank/marksheet cbse/class-xii-marksheet standard active",
                "acme-bank/marksheet cbse/class-xii-marksheet premium pending",
            ])
    }

    @Test func anApprovalByAnyoneButAnApproverOfThePublisherCountsForNothing() throws {
        let fixture = try trustRootMarketplace()
        let blob = try pendingOnMain(fixture)
        for author in [acmeDev, cbseMember, taxApprover] {
            _ = try approve(fixture, blob: blob, author: author)
        }
        #expect(summary(try entitlements(fixture)) == ["acme-bank/marksheet cbse/class-xii-marksheet standard pending"])
    }

    @Test func anApprovalOnABranchCountsWhenMerged() throws {
        let fixture = try trustRootMarketplace()
        let blob = try pendingOnMain(fixture)
        try fixture.git("checkout", "-q", "-b", "cbse/approve")
        _ = try approve(fixture, blob: blob, author: cbseApprover)
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-m", "Merge cbse/approve", "cbse/approve", author: acmeDev)
        #expect(summary(try entitlements(fixture)) == ["acme-bank/marksheet cbse/class-xii-marksheet standard active"])
    }

    @Test func theTrailerIsReadOnlyWithTheWholeBlobId() {
        let blob = String(repeating: "ab", count: 20)
        #expect(
            ReplayCommit.InPlaceApproval.all(in: "Approve\n\nSetu-Approve: \(path) \(blob)\n")
                == [ReplayCommit.InPlaceApproval(path: path, blob: blob)])
        #expect(ReplayCommit.InPlaceApproval.all(in: "Approve\n\nSetu-Approve: \(path) \(blob.prefix(12))\n").isEmpty)
        #expect(ReplayCommit.InPlaceApproval.all(in: "Setu-Approve: \(path)\n").isEmpty)
        // The trailer's name is read in any case, as git reads trailers.
        #expect(
            ReplayCommit.InPlaceApproval.all(in: "Approve\n\nSetu-APprove: \(path) \(blob)")
                == [ReplayCommit.InPlaceApproval(path: path, blob: blob)])
    }
}
