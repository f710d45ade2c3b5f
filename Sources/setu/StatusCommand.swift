import ArgumentParser
import Foundation
import SetuEntitlements
import SetuGateway
import SetuGit
import SetuManifest
import SetuTrust

/// Options shared by the commands that replay history.
struct TrustOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The commit history is trusted from (default: the root commit).", valueName: "commit"))
    var trustRoot: String?

    @Option(name: .long, help: ArgumentHelp("A folder to keep the replay in, so later runs replay only new commits.", valueName: "dir"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("The date to judge expiry by, YYYY-MM-DD (default: today, UTC).", valueName: "date"))
    var today: String?

    var date: String {
        today ?? ManifestDate.today()
    }

    func validate() throws {
        try validateDate(today, option: "--today")
    }

    func trustRootID(in repository: Repository) throws -> ObjectID? {
        try trustRoot.map { try repository.resolveCommit($0) }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show who may call what: entitlements by state, pending approvals, refused changes.",
        discussion: """
            Replays the branch's first-parent history from the trust root and decides, commit by
            commit, which changes took effect: ownership and approvals come from the state before
            each commit, never from the commit itself.

            Exit codes: 0 the report was made, 2 a usage or I/O error.

            Examples:
              setu status --repo . --rev main
              setu status --state /var/lib/setu --format json
            """)

    @Option(name: .long, help: ArgumentHelp("The marketplace repository: a path or file:// URL.", valueName: "path"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp("The branch or commit to report on.", valueName: "rev"))
    var rev: String = "HEAD"

    @OptionGroup var trust: TrustOptions

    @Option(name: .long, help: ArgumentHelp("Output format: text or json.", valueName: "format"))
    var format: ReportFormat = .text

    func run() throws {
        let repository = try Repository(path: repo)
        let head = try repository.resolveCommit(rev)
        // The kept entitlements are read while history is replayed; the replay and the
        // entitlements are written back while the report is made.
        var engine = MarketplaceEngine(stateDirectory: trust.state)
        let step = try engine.step(repository, to: head, trustRoot: trust.trustRootID(in: repository), today: trust.date)
        let outcome = step.outcome
        var status = StatusReport(revision: "\(rev) (\(head.short))", head: head.hex, outcome: outcome, derived: step.derived)
        if let state = trust.state, FileManager.default.fileExists(atPath: state + "/quotas.json") {
            do {
                status.quotas = try PlanCounters.read(state + "/quotas.json")
            } catch {
                throw ValidationError("cannot read the quota use in \(state)/quotas.json: \(error)")
            }
        }
        // The replay can hold tens of thousands of files; the process ends once the
        // report is out, so freeing them one by one would only delay the exit.
        try withExtendedLifetime(outcome) {
            let report: String
            switch format {
            case .json: report = try status.json()
            case .text: report = status.text()
            }
            try engine.finishSaving()
            write(report)
            Foundation.exit(0)
        }
    }
}

/// What `setu status` prints.
struct StatusReport: Encodable {
    struct Change: Encodable {
        var path: String
        var commit: String
        var by: String
        var rule: RuleID
        var message: String
        var needs: [String]
        /// For a change waiting for approval: the version waiting, and the command an approver runs to approve it in place.
        var blob: String?
        var approve: String?
    }

    var revision: String
    var head: String
    var trustRoot: String
    var verification: String
    var replayedCommits: Int
    var incremental: Bool
    var rewrittenHistory: String?
    var entitlements: [Entitlement]
    var pendingApprovals: [Change]
    var unauthorized: [Change]
    var invalid: [Change]
    /// Quota use as `setu serve` last wrote it to the state folder, when it runs there.
    var quotas: [QuotaUse]?

    init(revision: String, head: String, outcome: ReplayOutcome, derived: DerivedEntitlements) {
        self.revision = revision
        self.head = head
        trustRoot = outcome.trustRoot.hex
        verification = derived.verification
        replayedCommits = outcome.replayedCommits
        incremental = outcome.incremental
        rewrittenHistory = outcome.rewrittenHistory
        entitlements = Array(derived.entitlements)
        func changes(_ reason: RefusedChange.Reason) -> [Change] {
            outcome.state.refused(reason).map {
                Change(
                    path: $0.path, commit: $0.commit, by: $0.by, rule: $0.rule, message: $0.message, needs: $0.needs,
                    blob: reason == .pendingApproval ? $0.blob : nil,
                    approve: reason == .pendingApproval && $0.blob != nil ? "setu approve \($0.path) && git push" : nil)
            }
        }
        pendingApprovals = changes(.pendingApproval)
        unauthorized = changes(.unauthorized)
        invalid = changes(.invalid)
    }

    /// One row per entitlement, in columns: state, consumer/subscription, API, plan, detail.
    /// Written byte by byte, since a large marketplace has tens of thousands of rows; the
    /// rows are read in place, as copying an entitlement out copies all its strings.
    private func entitlementTable() -> String {
        entitlements.withUnsafeBufferPointer { rows in
            // Each row's cell widths, measured once for the column widths and the padding.
            var cells = [(state: Int, subscription: Int, api: Int, plan: Int)]()
            cells.reserveCapacity(rows.count)
            var widths = [0, 0, 0, 0]
            for index in rows.indices {
                let cell = (
                    state: 2 + rows[index].state.rawValue.utf8.count,
                    subscription: columnWidth(rows[index].consumer) + 1 + columnWidth(rows[index].subscription),
                    api: columnWidth(rows[index].api), plan: columnWidth(rows[index].plan)
                )
                widths[0] = max(widths[0], cell.state)
                widths[1] = max(widths[1], cell.subscription)
                widths[2] = max(widths[2], cell.api)
                widths[3] = max(widths[3], cell.plan)
                cells.append(cell)
            }
            var out: [UInt8] = []
            out.reserveCapacity(rows.count * (widths.reduce(0, +) + 80))
            func append(_ text: String) { out.append(contentsOf: text.utf8) }
            func append(_ text: Substring) { out.append(contentsOf: text.utf8) }
            func pad(_ used: Int, to column: Int) {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: widths[column] - used + 2))
            }
            for index in rows.indices {
                let cell = cells[index]
                append("  ")
                append(rows[index].state.rawValue)
                pad(cell.state, to: 0)
                append(rows[index].consumer)
                append("/")
                append(rows[index].subscription)
                pad(cell.subscription, to: 1)
                append(rows[index].api)
                pad(cell.api, to: 2)
                append(rows[index].plan)
                pad(cell.plan, to: 3)
                switch rows[index].state {
                case .active:
                    if let approval = rows[index].approval {
                        append("approved by ")
                        append(approval.approver)
                        append(" in ")
                        append(approval.commit.prefix(7))
                    }
                case .pending:
                    append(rows[index].reason ?? "")
                    if !rows[index].approvers.isEmpty {
                        append(" (")
                        append(rows[index].approvers.joined(separator: ", "))
                        append(")")
                    }
                case .expired, .invalid:
                    append(rows[index].reason ?? "")
                }
                if let operations = rows[index].operations {
                    append("; operations ")
                    append(operations.joined(separator: ", "))
                }
                out.append(UInt8(ascii: "\n"))
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    func json() throws -> String {
        try prettyJSON(self)
    }

    func text() -> String {
        var out = "marketplace at \(revision), trusted from \(trustRoot.prefix(7)), verification: \(verification)\n"
        out +=
            incremental
            ? "replayed \(replayedCommits) new \(replayedCommits == 1 ? "commit" : "commits")\n"
            : "replayed \(replayedCommits) \(replayedCommits == 1 ? "commit" : "commits") from the trust root\n"
        if let rewrittenHistory { out += "warning: \(rewrittenHistory)\n" }
        out += "\nentitlements\n"
        if entitlements.isEmpty { out += "  (none)\n" }
        out += entitlementTable()
        func section(_ title: String, _ changes: [Change], needsLabel: String) {
            guard !changes.isEmpty else { return }
            out += "\n\(title)\n"
            for change in changes {
                out += "  \(change.path)  (\(change.commit.prefix(7)) by \(change.by))\n    \(change.message)\n"
                if !change.needs.isEmpty { out += "    \(needsLabel): \(change.needs.joined(separator: ", "))\n" }
                if let approve = change.approve {
                    out += "    to approve it in place, an approver runs: \(approve)\n"
                    out += "    the consumer runs nothing more: ask one of them, or resubmit it on a branch for them to merge\n"
                }
            }
        }
        section("pending approvals", pendingApprovals, needsLabel: "can approve")
        section("unauthorized changes (not in force)", unauthorized, needsLabel: "can make it")
        section("invalid changes (not in force)", invalid, needsLabel: "")
        if let quotas {
            out += "\nquota use (as setu serve last wrote it)\n"
            if quotas.isEmpty { out += "  (none this period)\n" }
            for use in quotas {
                let limit = use.limit.map { " of \($0) (\(Int((Double(use.used) / Double(max($0, 1)) * 100).rounded()))%)" } ?? ""
                out += "  \(use.consumer)  \(use.api)  \(use.period)  \(use.used)\(limit)\n"
            }
        }
        var counts: [Entitlement.State: Int] = [:]
        for entitlement in entitlements { counts[entitlement.state, default: 0] += 1 }
        let count = { (state: Entitlement.State) in counts[state] ?? 0 }
        out +=
            "\n\(count(.active)) active, \(count(.pending)) pending, \(count(.expired)) expired, \(count(.invalid)) invalid; "
            + "\(unauthorized.count) unauthorized and \(invalid.count) invalid \(unauthorized.count + invalid.count == 1 ? "change" : "changes")\n"
        return out
    }
}
