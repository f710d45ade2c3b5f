import ArgumentParser
import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTrust

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what merging a branch would change: entitlements gained, lost and changed, catalog changes, refusals.",
        discussion: """
            BASE is replayed from the trust root; HEAD's changes since the two branches forked are
            then applied as one merge commit made by --merged-by (default: whichever approver each
            subscription needs), with the branch's commits as its side branch.

            Exit codes: 0 every change would take effect or wait for approval, 1 some change would be
            refused as unauthorized or invalid, 2 a usage or I/O error.

            Examples:
              setu plan main..acme/marksheet
              setu plan origin/main..HEAD --merged-by registrar@cbse.example --format github
            """)

    @Argument(help: ArgumentHelp("The merge to plan: BASE..HEAD.", valueName: "base..head"))
    var range: String

    @Option(name: .long, help: ArgumentHelp("The marketplace repository: a path or file:// URL.", valueName: "path"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp("Who would merge: their email.", valueName: "email"))
    var mergedBy: String?

    @OptionGroup var trust: TrustOptions

    @Option(name: .long, help: ArgumentHelp("Output format: text, json or github.", valueName: "format"))
    var format: DiagnosticFormatter.Format = .text

    func validate() throws {
        let parts = range.components(separatedBy: "..")
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts[1].hasPrefix(".") else {
            throw ValidationError("the range must be BASE..HEAD, e.g. main..acme/marksheet")
        }
    }

    func run() throws {
        let parts = range.components(separatedBy: "..")
        let repository = try Repository(path: repo)
        let base = try repository.resolveCommit(parts[0]), head = try repository.resolveCommit(parts[1])
        let plan = try MergePlanner.plan(
            repository, base: base, head: head, mergedBy: mergedBy,
            trustRoot: trust.trustRootID(in: repository), stateDirectory: trust.state, today: trust.date)
        switch format {
        case .json: write(try json(plan))
        case .text: write(text(plan))
        case .github: write(github(plan))
        }
        if plan.refused.contains(where: { $0.reason != .pendingApproval }) { throw ExitCode(1) }
    }

    private func text(_ plan: MergePlan) -> String {
        var out = "merging \(parts.head) into \(parts.base), merged by \(plan.mergedBy)\n"
        out += "\nentitlements\n"
        if plan.entitlementChanges.isEmpty { out += "  no change\n" }
        for change in plan.entitlementChanges {
            let mark: String
            switch change.kind {
            case .gained: mark = "+"
            case .lost: mark = "-"
            case .changed: mark = "~"
            case .requested: mark = "?"
            }
            out += "  \(mark) \(change.sentence)\n"
        }
        if !plan.catalogChanges.isEmpty {
            out += "\ncatalog\n"
            for change in plan.catalogChanges {
                out += "  \(change.kind == .added ? "+" : change.kind == .removed ? "-" : "~") \(change.what) \(change.id) \(change.kind.rawValue)\n"
            }
        }
        if !plan.approvals.isEmpty {
            out += "\napprovals in place\n"
            for approval in plan.approvals {
                out += "  \(approval.approves ? "+" : "!") \(approval.sentence)\n"
            }
        }
        if !plan.refused.isEmpty {
            out += "\nwould not take effect\n"
            for refused in plan.refused {
                out += "  \(refused.path) (\(refused.reason.rawValue), by \(refused.by))\n    \(refused.message)\n"
                if !refused.needs.isEmpty { out += "    needs one of: \(refused.needs.joined(separator: ", "))\n" }
                if refused.reason == .pendingApproval {
                    out += "    once merged, an approver can approve it in place: setu approve \(refused.path)\n"
                }
            }
        }
        return out
    }

    private var parts: (base: String, head: String) {
        let split = range.components(separatedBy: "..")
        return (split[0], split[1])
    }

    private func json(_ plan: MergePlan) throws -> String {
        struct Document: Encodable {
            var base: String
            var head: String
            var mergedBy: String
            var entitlements: [MergePlan.EntitlementChange]
            var catalog: [MergePlan.CatalogChange]
            var refused: [RefusedChange]
            var approvals: [MergePlan.InPlaceApproval]
        }
        let document = Document(
            base: parts.base, head: parts.head, mergedBy: plan.mergedBy, entitlements: plan.entitlementChanges,
            catalog: plan.catalogChanges, refused: plan.refused, approvals: plan.approvals)
        return try prettyJSON(document)
    }

    /// One workflow annotation per change, on the file that makes it.
    private func github(_ plan: MergePlan) -> String {
        var out = ""
        for change in plan.entitlementChanges {
            let path =
                plan.after.entitlements.first { $0.consumer == change.consumer && $0.subscription == change.subscription }?.path
                ?? plan.before.entitlements.first { $0.consumer == change.consumer && $0.subscription == change.subscription }?.path ?? ""
            out += "::notice file=\(path),title=setu plan::\(change.sentence)\n"
        }
        for refused in plan.refused {
            let level = refused.reason == .pendingApproval ? "warning" : "error"
            out += "::\(level) file=\(refused.path),title=\(refused.rule)::\(refused.message)\n"
        }
        return out + text(plan).split(separator: "\n").prefix(1).joined() + "\n"
    }
}
