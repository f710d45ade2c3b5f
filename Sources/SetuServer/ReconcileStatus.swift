import SetuEntitlements
import SetuGateway
import SetuManifest
import SetuTrust

/// The reconciler's account of itself: what is serving, how the last reconcile went, and
/// what in the repository is waiting or refused. Served as JSON on `/status` and written
/// to `<state>/status.json`.
public struct ReconcileStatus: Encodable, Sendable, Equatable {
    /// One aspect of health, in the style of Kubernetes conditions.
    public struct Condition: Codable, Sendable, Equatable {
        /// `Ready` (a snapshot is serving) or `Reconciled` (the last reconcile succeeded).
        public var type: String
        /// Whether the condition holds.
        public var status: Bool
        /// A word for why: `Serving`, `Applied`, `Unchanged`, `Failed`, `Starting`.
        public var reason: String
        /// The details, in words.
        public var message: String
    }

    /// How one reconcile went.
    public struct Attempt: Codable, Sendable, Equatable {
        /// When it finished, RFC 3339.
        public var at: String
        /// `applied` (a new snapshot is serving), `unchanged` (nothing new), or `failed`.
        public var result: String
        /// How long it took, in milliseconds.
        public var durationMs: Double
        /// The commit it looked at, when it got that far.
        public var revision: String?
        /// Why it failed.
        public var error: String?
    }

    /// A problem in the manifests in force.
    public struct FileError: Codable, Sendable, Equatable {
        /// The file, from the repository root.
        public var file: String
        /// Where in the file, from 1.
        public var line: Int
        public var column: Int
        /// The rule broken, e.g. `schema.type`.
        public var rule: String
        /// What is wrong.
        public var message: String
        /// What to do about it, when known.
        public var fix: String?
    }

    /// Whether a snapshot is serving.
    public var ready: Bool
    /// The repository path or URL.
    public var source: String
    /// The branch served.
    public var branch: String
    /// The commit being served.
    public var revision: String?
    /// When the serving snapshot was swapped in.
    public var servingSince: String?
    /// The commit history is trusted from.
    public var trustRoot: String?
    /// The platform's verification mode: `none`, `authors` or `signatures`.
    public var verification: String?
    /// Set when the last replay found the history rewritten.
    public var rewrittenHistory: String?
    /// The last reconcile, whatever its result.
    public var lastAttempt: Attempt?
    /// `Ready` and `Reconciled`.
    public var conditions: [Condition]
    /// Counts in the serving snapshot: routes, credentials, and entitlements by state.
    public var counts: [String: Int]
    /// Every entitlement of the serving revision, in every state.
    public var entitlements: EntitlementList
    /// Changes not in force by path, and the first error of each manifest in force that has
    /// one: kept as the replay left them, and listed only when the status is read.
    private var refused: [String: RefusedChange]
    private var firstErrors: [String: Diagnostic]
    /// The paths of the changes refused as invalid, kept up to date from the paths each replay
    /// touched rather than found again among every refusal.
    private var invalidPaths: Set<String> = []
    /// Quota use in the current period by consumer and API, with the quota in force.
    public var quotas: [QuotaUse] = []

    /// Changes not in force, and why: path, commit, who, rule, message and who could make them.
    public var pendingApprovals: [RefusedChange] { refused(.pendingApproval) }
    public var unauthorized: [RefusedChange] { refused(.unauthorized) }
    public var invalid: [RefusedChange] { invalidPaths.sorted().map { refused[$0]! } }

    /// Errors in the manifests in force (their files serve nothing).
    public var problems: [FileError] {
        firstErrors.values.sorted().map {
            FileError(
                file: $0.file, line: $0.location.line, column: $0.location.column, rule: $0.rule.rawValue,
                message: $0.message, fix: $0.fix)
        }
    }

    /// The status before the first reconcile.
    public init(source: String, branch: String) {
        ready = false
        self.source = source
        self.branch = branch
        conditions = [
            Condition(type: "Ready", status: false, reason: "Starting", message: "no reconcile has finished yet")
        ]
        counts = [:]
        entitlements = EntitlementList()
        refused = [:]
        firstErrors = [:]
    }

    /// Takes in a reconcile that produced a snapshot now serving.
    mutating func applied(
        _ outcome: ReplayOutcome, derived: DerivedEntitlements, counts entitlementCounts: [Entitlement.State: Int],
        snapshot: GatewaySnapshot, attempt: Attempt
    ) {
        // After a few commits only the paths they touched can have become invalid or stopped being so.
        if outcome.incremental, let start = outcome.startRevision, start == revision {
            invalidPaths.subtract(outcome.touchedPaths)
            for path in outcome.touchedPaths where outcome.state.refused[path]?.reason == .invalid { invalidPaths.insert(path) }
        } else {
            invalidPaths = Set(outcome.state.refused.filter { $0.value.reason == .invalid }.keys)
        }
        ready = true
        revision = snapshot.revision
        servingSince = attempt.at
        trustRoot = outcome.trustRoot.hex
        verification = derived.verification
        rewrittenHistory = outcome.rewrittenHistory
        lastAttempt = attempt
        entitlements = derived.entitlements
        var counts = ["routes": snapshot.routes.count, "credentials": snapshot.credentials.values.reduce(0) { $0 + $1.count }]
        for state in Entitlement.State.allCases {
            counts["entitlements.\(state.rawValue)"] = entitlementCounts[state] ?? 0
        }
        self.counts = counts
        refused = outcome.state.refused
        firstErrors = derived.firstErrors
        let invalid = self.invalid
        conditions = [
            Condition(type: "Ready", status: true, reason: "Serving", message: "serving \(snapshot.revision)"),
            Condition(
                type: "Reconciled", status: true, reason: "Applied",
                message: invalid.isEmpty
                    ? "the branch head is serving"
                    : "the branch head is serving; \(invalid.count) invalid \(invalid.count == 1 ? "change is" : "changes are") not in force: "
                        + invalid.map { "\($0.path): \($0.message)" }.joined(separator: "; ")),
        ]
    }

    /// Takes in a reconcile that found nothing new.
    mutating func unchanged(_ attempt: Attempt) {
        lastAttempt = attempt
        conditions =
            conditions.filter { $0.type != "Reconciled" } + [
                Condition(type: "Reconciled", status: true, reason: "Unchanged", message: "the branch head is serving")
            ]
    }

    /// Takes in a reconcile that failed; what was serving keeps serving.
    mutating func failed(_ attempt: Attempt) {
        lastAttempt = attempt
        let serving = revision.map { "; still serving \($0)" } ?? "; nothing is serving yet"
        conditions =
            conditions.filter { $0.type != "Reconciled" } + [
                Condition(type: "Reconciled", status: false, reason: "Failed", message: (attempt.error ?? "failed") + serving)
            ]
    }

    private func refused(_ reason: RefusedChange.Reason) -> [RefusedChange] {
        refused.values.filter { $0.reason == reason }.sorted { $0.path < $1.path }
    }

    private enum CodingKeys: String, CodingKey {
        case ready, source, branch, revision, servingSince, trustRoot, verification, rewrittenHistory, lastAttempt
        case conditions, counts, entitlements, pendingApprovals, unauthorized, invalid, problems, quotas
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ready, forKey: .ready)
        try container.encode(source, forKey: .source)
        try container.encode(branch, forKey: .branch)
        try container.encodeIfPresent(revision, forKey: .revision)
        try container.encodeIfPresent(servingSince, forKey: .servingSince)
        try container.encodeIfPresent(trustRoot, forKey: .trustRoot)
        try container.encodeIfPresent(verification, forKey: .verification)
        try container.encodeIfPresent(rewrittenHistory, forKey: .rewrittenHistory)
        try container.encodeIfPresent(lastAttempt, forKey: .lastAttempt)
        try container.encode(conditions, forKey: .conditions)
        try container.encode(counts, forKey: .counts)
        try container.encode(entitlements, forKey: .entitlements)
        try container.encode(pendingApprovals, forKey: .pendingApprovals)
        try container.encode(unauthorized, forKey: .unauthorized)
        try container.encode(invalid, forKey: .invalid)
        try container.encode(problems, forKey: .problems)
        try container.encode(quotas, forKey: .quotas)
    }
}
