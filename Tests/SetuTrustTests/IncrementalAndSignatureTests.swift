import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTestSupport
import SetuTrust
import Testing

struct IncrementalReplayTests {
    @Test func incrementalRunAfterOneCommitMatchesAFullReplay() throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        let state = TemporaryDirectory()
        let repository = try Repository(path: fixture.path)
        let first = try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD"), stateDirectory: state.path)
        #expect(!first.incremental)
        #expect(first.replayedCommits == 2)

        try fixture.edit("subscriptions/acme-bank/marksheet.yaml", replacing: "plan: standard", with: "plan: premium")
        try fixture.commitAll("Upgrade", author: acmeDev)
        let head = try repository.resolveCommit("HEAD")
        let incremental = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
        #expect(incremental.incremental)
        #expect(incremental.replayedCommits == 1)
        let full = try TrustEngine.replay(repository, head: head)
        #expect(incremental.state == full.state)
        #expect(incremental.state.refused["subscriptions/acme-bank/marksheet.yaml"]?.reason == .pendingApproval)

        let unchanged = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
        #expect(unchanged.incremental && unchanged.replayedCommits == 0)
    }

    @Test func fewChangesGoToADeltaAndManyToANewBase() throws {
        let fixture = try trustRootMarketplace()
        let state = TemporaryDirectory()
        let repository = try Repository(path: fixture.path)
        let base = state.path + "/trust/replay.bin", delta = state.path + "/trust/replay.delta"
        func replay() throws -> ReplayOutcome {
            let head = try repository.resolveCommit("HEAD")
            let outcome = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
            #expect(outcome.state == (try TrustEngine.replay(repository, head: head)).state)
            return outcome
        }
        _ = try replay()
        let firstBase = try #require(FileManager.default.contents(atPath: base))
        #expect(!FileManager.default.fileExists(atPath: delta))

        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        #expect(try replay().incremental)
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription.replacingOccurrences(of: "standard", with: "premium"))
        try fixture.commitAll("Upgrade", author: acmeDev)
        #expect(try replay().replayedCommits == 1)
        #expect(FileManager.default.contents(atPath: base) == firstBase)
        #expect(FileManager.default.fileExists(atPath: delta))

        // A delta that does not read is left out: replay continues from the base's head.
        try Data("setu replay delta\ngarbage".utf8).write(to: URL(fileURLWithPath: delta))
        let fromBase = try replay()
        #expect(fromBase.incremental && fromBase.replayedCommits == 2)

        for index in 0..<20 {
            try fixture.write(
                "subscriptions/acme-bank/many-\(index).yaml", marksheetSubscription.replacingOccurrences(of: "marksheet}", with: "many-\(index)}"))
        }
        try fixture.commitAll("Subscribe to many", author: acmeDev)
        let many = try replay()
        #expect(many.state.refused.count == 21)
        #expect(FileManager.default.contents(atPath: base) != firstBase)
        #expect(!FileManager.default.fileExists(atPath: delta))
        #expect(try replay().replayedCommits == 0)
    }

    @Test(arguments: ["garbage", "truncated", "empty", "one byte changed"])
    func aDamagedStoredStateIsReplayedFromTheTrustRoot(damage: String) throws {
        let fixture = try trustRootMarketplace()
        try subscribeOnBranch(fixture, mergedBy: cbseApprover)
        let state = TemporaryDirectory()
        let repository = try Repository(path: fixture.path)
        let head = try repository.resolveCommit("HEAD")
        let first = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
        let stored = state.path + "/trust/replay.bin"
        let bytes = try #require(FileManager.default.contents(atPath: stored))
        switch damage {
        case "garbage": try Data("not a replay state".utf8).write(to: URL(fileURLWithPath: stored))
        case "truncated": try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: stored))
        case "one byte changed":
            // Inside a stored path: every length and section still reads, only the content is wrong.
            var altered = [UInt8](bytes)
            let path = Array("subscriptions/acme-bank/marksheet.yaml".utf8)
            let at = try #require(altered.indices.first { altered[$0...].starts(with: path) })
            altered[at + path.count - 6] = UInt8(ascii: "k")
            try Data(altered).write(to: URL(fileURLWithPath: stored))
        default: try Data().write(to: URL(fileURLWithPath: stored))
        }
        let again = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
        #expect(!again.incremental)
        #expect(again.replayedCommits == first.replayedCommits)
        #expect(again.state == first.state)
        #expect(FileManager.default.contents(atPath: stored) == bytes)
    }

    @Test func forcePushIsDetectedAndReplayedFromTheTrustRoot() throws {
        let fixture = try trustRootMarketplace()
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.commitAll("Subscribe", author: acmeDev)
        let state = TemporaryDirectory()
        let repository = try Repository(path: fixture.path)
        let before = try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD"), stateDirectory: state.path)
        try fixture.git("reset", "-q", "--hard", "HEAD~1")
        try fixture.write(
            "catalog/cbse/class-x-certificates.yaml",
            try fixture.read("catalog/cbse/class-x-certificates.yaml").replacingOccurrences(of: "version: 3.0.0", with: "version: 3.1.0"))
        try fixture.commitAll("Rewritten", author: cbseMember)
        let after = try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD"), stateDirectory: state.path)
        #expect(!after.incremental)
        #expect(
            after.rewrittenHistory
                == "history was rewritten: the stored head \(before.state.revision.prefix(7)) is no longer on the first-parent history of \(after.state.revision.prefix(7)); replayed from the trust root"
        )
        #expect(after.state.refused.isEmpty)
        #expect(after.state == (try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD"))).state)
    }
}

struct SignatureModeTests {
    let keys = TemporaryDirectory()

    func keyPair(_ name: String) throws -> (path: String, line: String) {
        try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", keys.child(name)])
        return (keys.child(name), try String(contentsOfFile: keys.child(name + ".pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The example with `verification: signatures`, ACME's developer and CBSE's registrar registered with real keys.
    func signedMarketplace() throws -> (GitFixture, dev: String, registrar: String) {
        let fixture = try trustRootMarketplace()
        let dev = try keyPair("dev"), registrar = try keyPair("registrar")
        try fixture.edit("policies/platform.yaml", replacing: "verification: authors", with: "verification: signatures")
        try fixture.edit(
            "subscriptions/acme-bank/consumer.yaml",
            replacing: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG/H+66yLQkA2eV9tWrszDVGCTkuAlb1ZIr1u4ReBU01 dev@acme.example", with: dev.line)
        try fixture.edit(
            "catalog/cbse/publisher.yaml", replacing: "    - email: registrar@cbse.example\n      name: Registrar, Records",
            with: "    - email: registrar@cbse.example\n      sshKeys: [\"\(registrar.line)\"]")
        try fixture.git("add", "-A")
        try fixture.git("commit", "-q", "--amend", "--no-edit", author: admin)
        return (fixture, dev.path, registrar.path)
    }

    func signedCommit(_ fixture: GitFixture, key: String, author: String, arguments: [String]) throws {
        try fixture.git(["-c", "gpg.format=ssh", "-c", "user.signingkey=\(key)"] + arguments + ["-S"], author: author)
    }

    /// ACME's developer subscribes on a branch in a signed commit; CBSE's registrar merges it in a signed merge.
    func subscribeAndApproveSigned(_ fixture: GitFixture, dev: String, registrar: String) throws {
        try fixture.git("checkout", "-q", "-b", "acme/marksheet")
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.git("add", "-A")
        try signedCommit(fixture, key: dev, author: acmeDev, arguments: ["commit", "-q", "-m", "Subscribe"])
        try fixture.git("checkout", "-q", "main")
        try signedCommit(fixture, key: registrar, author: cbseApprover, arguments: ["merge", "-q", "--no-ff", "-m", "Approve", "acme/marksheet"])
    }

    @Test func properlySignedApproverMergeActivates() throws {
        let (fixture, dev, registrar) = try signedMarketplace()
        try subscribeAndApproveSigned(fixture, dev: dev, registrar: registrar)
        #expect(summary(try entitlements(fixture)) == ["acme-bank/marksheet cbse/class-xii-marksheet standard active"])
    }

    @Test func keysKeptInTheStateIdentifySignersOfLaterCommits() throws {
        let (fixture, dev, registrar) = try signedMarketplace()
        let state = TemporaryDirectory()
        let repository = try Repository(path: fixture.path)
        _ = try TrustEngine.replay(repository, head: repository.resolveCommit("HEAD"), stateDirectory: state.path)
        try subscribeAndApproveSigned(fixture, dev: dev, registrar: registrar)
        let head = try repository.resolveCommit("HEAD")
        let incremental = try TrustEngine.replay(repository, head: head, stateDirectory: state.path)
        #expect(incremental.incremental && incremental.replayedCommits == 1)
        #expect(incremental.state == (try TrustEngine.replay(repository, head: head)).state)
        #expect(incremental.state.files["subscriptions/acme-bank/marksheet.yaml"]?.approval?.approver == "registrar@cbse.example")
    }

    @Test func unsignedMergeGivesNoIdentity() throws {
        let (fixture, dev, _) = try signedMarketplace()
        try fixture.git("checkout", "-q", "-b", "acme/marksheet")
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.git("add", "-A")
        try signedCommit(fixture, key: dev, author: acmeDev, arguments: ["commit", "-q", "-m", "Subscribe"])
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-m", "Approve, unsigned", "acme/marksheet", author: cbseApprover)
        let report = try entitlements(fixture)
        #expect(summary(report) == ["acme-bank/marksheet cbse/class-xii-marksheet standard pending"])
        #expect(
            report.state.refused["subscriptions/acme-bank/marksheet.yaml"]?.by
                == "merge by unidentified (unsigned commit by registrar@cbse.example) of commits by dev@acme.example")
    }

    @Test func unregisteredKeyGivesNoIdentity() throws {
        let (fixture, _, _) = try signedMarketplace()
        let stranger = try keyPair("stranger")
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.git("add", "-A")
        try signedCommit(fixture, key: stranger.path, author: acmeDev, arguments: ["commit", "-q", "-m", "Subscribe"])
        let refused = try #require(try entitlements(fixture).state.refused["subscriptions/acme-bank/marksheet.yaml"])
        #expect(refused.reason == .unauthorized)
        #expect(refused.by == "unidentified (signed with an ssh-ed25519 key that no member, approver or admin has registered)")
    }

    /// Writes a raw commit object and points main at it.
    func install(rawCommit: String, in fixture: GitFixture) throws {
        try Data(rawCommit.utf8).write(to: URL(fileURLWithPath: keys.child("raw")))
        let id = try fixture.git("hash-object", "-t", "commit", "-w", keys.child("raw"))
        try fixture.git("update-ref", "refs/heads/main", id)
    }

    @Test func commitAlteredAfterSigningGivesNoIdentity() throws {
        let (fixture, dev, _) = try signedMarketplace()
        try fixture.write(
            "subscriptions/acme-bank/consumer.yaml",
            try fixture.read("subscriptions/acme-bank/consumer.yaml").replacingOccurrences(of: "ACME Bank Ltd", with: "ACME Bank Limited"))
        try fixture.git("add", "-A")
        try signedCommit(fixture, key: dev, author: acmeDev, arguments: ["commit", "-q", "-m", "Rename"])
        let raw = try fixture.git("cat-file", "commit", "HEAD") + "\n"
        try install(rawCommit: raw.replacingOccurrences(of: "\nRename\n", with: "\nRename the bank\n"), in: fixture)
        let refused = try #require(try entitlements(fixture).state.refused["subscriptions/acme-bank/consumer.yaml"])
        #expect(refused.by == "unidentified (the signature does not match the commit: it was altered after signing, or signed by another key)")
    }

    @Test func signatureForAnotherNamespaceGivesNoIdentity() throws {
        let (fixture, dev, _) = try signedMarketplace()
        try fixture.write(
            "subscriptions/acme-bank/consumer.yaml",
            try fixture.read("subscriptions/acme-bank/consumer.yaml").replacingOccurrences(of: "ACME Bank Ltd", with: "ACME Bank Limited"))
        try fixture.commitAll("Rename", author: acmeDev)
        let raw = try fixture.git("cat-file", "commit", "HEAD") + "\n"
        try Data(raw.utf8).write(to: URL(fileURLWithPath: keys.child("payload")))
        try run("/usr/bin/ssh-keygen", ["-q", "-Y", "sign", "-f", dev, "-n", "file", keys.child("payload")])
        let signature = try String(contentsOfFile: keys.child("payload.sig"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let header = "gpgsig " + signature.split(separator: "\n").joined(separator: "\n ") + "\n"
        let split = raw.range(of: "\n\n")!
        try install(rawCommit: String(raw[..<split.lowerBound]) + "\n" + header + String(raw[split.upperBound...]).prefixedWithNewline, in: fixture)
        let refused = try #require(try entitlements(fixture).state.refused["subscriptions/acme-bank/consumer.yaml"])
        #expect(refused.by == "unidentified (signed for namespace 'file', not 'git')")
    }
}

extension String {
    var prefixedWithNewline: String { "\n" + self }
}

struct TrustRootTests {
    @Test func aPinnedTrustRootTrustsItsTreeAndIgnoresEarlierHistory() throws {
        let fixture = try trustRootMarketplace()
        // Committed by a consumer straight to main: pending when replayed from the root commit...
        try fixture.write("subscriptions/acme-bank/marksheet.yaml", marksheetSubscription)
        try fixture.commitAll("Subscribe", author: acmeDev)
        let repository = try Repository(path: fixture.path)
        let head = try repository.resolveCommit("HEAD")
        #expect(try TrustEngine.replay(repository, head: head).state.refused.count == 1)
        // ...but in force when the operator pins that very commit as the trust root.
        let pinned = try TrustEngine.replay(repository, head: head, trustRoot: head)
        #expect(pinned.trustRoot == head)
        #expect(pinned.state.refused.isEmpty)
        #expect(pinned.state.files["subscriptions/acme-bank/marksheet.yaml"]?.approval == Approval(commit: head.hex, approver: "trust root"))
    }

    @Test func aTrustRootOffTheHistoryIsAnError() throws {
        let fixture = try trustRootMarketplace()
        try fixture.git("checkout", "-q", "-b", "other")
        try fixture.commitAll("elsewhere", author: admin)
        let other = try fixture.git("rev-parse", "HEAD")
        try fixture.git("checkout", "-q", "main")
        try fixture.commitAll("on main", author: admin)
        let repository = try Repository(path: fixture.path)
        do {
            _ = try TrustEngine.replay(repository, head: repository.resolveCommit("main"), trustRoot: ObjectID(hex: other)!)
            Issue.record("a trust root off the history was accepted")
        } catch let error as GitError {
            #expect(
                error.message == "the trust root \(other.prefix(7)) is not on the first-parent history of \(try fixture.git("rev-parse", "--short=7", "main"))")
        }
    }
}

struct IncrementalEntitlementTests {
    /// A subscription file in ACME's folder, named after `name`, with extra spec lines.
    func subscription(_ name: String, api: String = "cbse/class-xii-marksheet", _ extra: String = "") -> String {
        """
        apiVersion: setu/v1
        kind: Subscription
        metadata: {name: \(name)}
        spec:
          api: \(api)
          plan: standard
          purpose: Verify the academic records of education-loan applicants.
        \(extra)
        """
    }

    /// ACME's developer commits `files` on a branch, and the CBSE registrar merges it.
    func approved(_ fixture: GitFixture, _ files: [String: String]) throws {
        try fixture.git("checkout", "-q", "-b", "acme/next")
        for (path, text) in files { try fixture.write(path, text) }
        try fixture.commitAll("Subscribe", author: acmeDev)
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-m", "Merge acme/next", "acme/next", author: cbseApprover)
        try fixture.git("branch", "-q", "-D", "acme/next")
    }

    @Test func entitlementsUpdatedForSubscriptionCommitsMatchAFullDerivation() throws {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        try fixture.commitAll("Create the marketplace", author: admin)
        let repository = try Repository(path: fixture.path)
        // One engine lives through every step, as in `setu serve`; each step is also taken by a
        // new engine on a state directory of its own, as by one `setu status --state` after another.
        let liveState = TemporaryDirectory(), commandState = TemporaryDirectory()
        var live = MarketplaceEngine(stateDirectory: liveState.path)
        let head = try repository.resolveCommit("HEAD")
        let first = try live.step(repository, to: head, today: "2026-11-28", snapshot: true)
        #expect(first.derivedWhole)
        var command = MarketplaceEngine(stateDirectory: commandState.path)
        _ = try command.step(repository, to: head, today: "2026-11-28")
        try command.finishSaving()
        var outcome = first.outcome
        var derived = first.derived

        /// Makes a change, then checks the updated entitlements (and the live engine's snapshot) against a full derivation.
        func step(_ what: Comment, today: String = "2026-11-28", updates: Bool = true, _ change: () throws -> Void) throws {
            try change()
            let head = try repository.resolveCommit("HEAD")
            let whole = EntitlementDerivation.derive(try TrustEngine.replay(repository, head: head).state, today: today)
            let full = DerivedEntitlements(whole, today: today)
            let stepped = try live.step(repository, to: head, today: today, snapshot: true)
            #expect(stepped.derivedWhole == !updates, what)
            #expect(stepped.derived == full, what)
            let expected = GatewaySnapshot(whole)
            #expect(stepped.snapshot?.entitlements == expected.entitlements, what)
            #expect(stepped.snapshot?.inactive == expected.inactive, what)
            var fresh = MarketplaceEngine(stateDirectory: commandState.path)
            let taken = try fresh.step(repository, to: head, today: today)
            try fresh.finishSaving()
            #expect(taken.derivedWhole == !updates, what)
            #expect(taken.derived == full, what)
            outcome = stepped.outcome
            derived = stepped.derived
        }

        try step("a subscription straight to main is pending") {
            try fixture.write("subscriptions/acme-bank/marksheet.yaml", subscription("marksheet"))
            try fixture.commitAll("Subscribe", author: acmeDev)
        }
        try step("the approver merges it") {
            try approved(fixture, ["subscriptions/acme-bank/marksheet.yaml": subscription("marksheet", "  operations: [hscer]")])
        }
        try step("an approved subscription naming no such operation is refused; the version before stays in force") {
            try approved(fixture, ["subscriptions/acme-bank/marksheet.yaml": subscription("marksheet", "  operations: [hscerr]")])
        }
        try step("a misspelt API is refused, with the closest id suggested") {
            try approved(fixture, ["subscriptions/acme-bank/typo.yaml": subscription("typo", api: "cbse/class-xii-marksheat")])
        }
        try step("two subscriptions of one consumer with one name") {
            try approved(
                fixture, ["subscriptions/acme-bank/twin.yaml": subscription("twin") + "---\n" + subscription("twin", api: "cbse/class-x-certificates")])
        }
        try step("an approved subscription past its end has expired") {
            try approved(fixture, ["subscriptions/acme-bank/old.yaml": subscription("old", "  notAfter: 2026-01-31")])
        }
        try step("the consumer unsubscribes") {
            try fixture.remove("subscriptions/acme-bank/cbse-class-xii-marksheet.yaml")
            try fixture.commitAll("Unsubscribe", author: acmeDev)
        }
        try step("a later day with no new commit", today: "2026-12-01") {}
        try step("a later day is the next end passing", today: "2027-01-01") {
            try approved(fixture, ["subscriptions/acme-bank/soon.yaml": subscription("soon", "  notAfter: 2026-12-31")])
        }
        try step("the catalog changes: everything is derived again", today: "2027-01-01", updates: false) {
            try fixture.edit("catalog/cbse/class-xii-marksheet.yaml", replacing: "plans: [standard, premium]", with: "plans: [standard]")
            try fixture.commitAll("Drop the premium plan", author: cbseMember)
        }
        try step("a consumer's registration changes: everything is derived again", today: "2027-01-01", updates: false) {
            try fixture.edit("subscriptions/acme-bank/consumer.yaml", replacing: "ACME", with: "Acme")
            try fixture.commitAll("Rename", author: admin)
        }
        let refused = outcome.state.refused
        #expect(refused["subscriptions/acme-bank/typo.yaml"]?.rule == "ref.api")
        #expect(refused["subscriptions/acme-bank/typo.yaml"]?.message.contains("did you mean 'cbse/class-xii-marksheet'") == true)
        #expect(!derived.entitlements.contains { $0.subscription == "typo" })
        #expect(derived.entitlements.contains { $0.subscription == "old" && $0.state == .expired })
        #expect(derived.entitlements.contains { $0.subscription == "soon" && $0.state == .expired })
        #expect(refused["subscriptions/acme-bank/marksheet.yaml"]?.rule == "ref.operation")
        #expect(derived.entitlements.contains { $0.subscription == "marksheet" && $0.state == .active && $0.operations == ["hscer"] })
        #expect(refused["subscriptions/acme-bank/twin.yaml"]?.rule == "name.unique")
        #expect(!derived.entitlements.contains { $0.path == "subscriptions/acme-bank/cbse-class-xii-marksheet.yaml" })
    }
}
