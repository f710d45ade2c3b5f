import SetuEntitlements
import SetuGit
import SetuManifest
import SetuStorage

/// One path's change in a commit: its new content, or `nil` for a deletion.
public struct FileChange: Sendable {
    /// The path, from the repository root.
    public var path: String
    /// The new content; `nil` when the path was deleted.
    public var content: SourceFile.Content?
    /// The new blob id; `nil` when deleted.
    public var blob: String?

    /// Creates a change.
    public init(path: String, content: SourceFile.Content?, blob: String?) {
        self.path = path
        self.content = content
        self.blob = blob
    }
}

/// A commit a merge brought in from its side branch: who made it and which paths it touched.
public struct SideCommit: Sendable {
    public var id: String
    public var author: Person
    public var signature: CommitSignature?
    public var paths: Set<String>
    /// The versions its message approves in place.
    public var approvals: [ReplayCommit.InPlaceApproval]

    /// Creates a side-branch commit.
    public init(
        id: String, author: Person, signature: CommitSignature?, paths: Set<String>,
        approvals: [ReplayCommit.InPlaceApproval] = []
    ) {
        self.approvals = approvals
        self.id = id
        self.author = author
        self.signature = signature
        self.paths = paths
    }
}

/// A commit on the tracked branch's first-parent chain, as replay sees it.
public struct ReplayCommit: Sendable {
    public var id: String
    public var author: Person
    public var signature: CommitSignature?
    /// Changes against the first parent (for a merge: what the side branch brings).
    public var changes: [FileChange]
    /// For a merge, the commits it brings in; empty otherwise.
    public var sideCommits: [SideCommit]
    /// Whether the commit has more than one parent.
    public var isMerge: Bool
    /// For a merge that has not happened yet (`setu plan`): who is assumed to
    /// make it. `nil` means read the identity from the commit as usual.
    public var assumedMerger: AssumedMerger?
    /// The versions the commit's message approves in place.
    public var approvals: [InPlaceApproval] = []

    /// An approval of one version of a path that is already on the branch,
    /// written in a commit message as `Setu-Approve: <path> <blob>`.
    public struct InPlaceApproval: Sendable, Hashable {
        /// The path approved.
        public var path: String
        /// The git blob id (all 40 hex digits) of the version approved.
        public var blob: String

        public init(path: String, blob: String) {
            self.path = path
            self.blob = blob
        }

        /// The trailer's name.
        public static let trailer = "Setu-Approve"

        /// The approvals a commit message carries: each line `Setu-Approve: <path> <blob>`,
        /// the blob written in full.
        public static func all(in message: String) -> [InPlaceApproval] {
            // Asked of every commit replayed: most messages hold no trailer, which a scan of the
            // bytes (in any case, as the lines below are read) says without splitting them.
            let key = Array((trailer + ":").lowercased().utf8)
            let bytes = Array(message.utf8)
            let holdsKey =
                bytes.count >= key.count
                && (0...(bytes.count - key.count)).contains { start in
                    key.indices.allSatisfy { bytes[start + $0] | 0x20 == key[$0] | 0x20 }
                }
            guard holdsKey else { return [] }
            return message.split(whereSeparator: \.isNewline).compactMap { line in
                let words = line.split(whereSeparator: \.isWhitespace)
                guard words.count == 3, words[0].lowercased() == trailer.lowercased() + ":" else { return nil }
                let blob = words[2].lowercased()
                guard blob.utf8.count == 40, blob.allSatisfy(\.isHexDigit) else { return nil }
                return InPlaceApproval(path: String(words[1]), blob: blob)
            }
        }

        /// The line to write in a commit message.
        public var line: String { "\(Self.trailer): \(path) \(blob)" }
    }

    /// Who a planned merge is assumed to be made by.
    public enum AssumedMerger: Sendable {
        /// A known person, by email.
        case person(String)
        /// Whichever approver each subscription needs; owner of nothing.
        case anyApprover
    }

    /// Creates a replay commit.
    public init(
        id: String, author: Person, signature: CommitSignature?, changes: [FileChange],
        sideCommits: [SideCommit] = [], isMerge: Bool = false, approvals: [InPlaceApproval] = []
    ) {
        self.approvals = approvals
        self.id = id
        self.author = author
        self.signature = signature
        self.changes = changes
        self.sideCommits = sideCommits
        self.isMerge = isMerge
    }
}

/// Decides, commit by commit, which changes take effect (DESIGN.md §4).
///
/// A pure function of values: ownership and approvers are read from the
/// effective state at each commit's first parent, never from the commit itself,
/// so nobody grants themselves rights.
public struct HistoryReplay: Sendable {
    /// The state so far.
    public private(set) var state: EffectiveState
    /// Every path a commit applied so far changed, whether the change took effect or not.
    public private(set) var touchedPaths: Set<String> = []
    /// Who owns and approves what, at `state`.
    private(set) var view: TrustView
    private let validator = MarketplaceValidator()
    /// Versions read and checked ahead of time, by path and blob id.
    private var prepared: [String: PreparedFile] = [:]
    /// Where the state's files are, for the rules that span manifests.
    private(set) var references = ReferenceIndex()

    /// Starts from an effective state (empty before the trust root).
    public init(state: EffectiveState) {
        self.init(state: state, view: nil)
    }

    /// Starts from an effective state and, when known, who owns and approves
    /// what in it (else read from the state's registrations).
    init(state: EffectiveState, view: TrustView?, references: ReferenceIndex? = nil) {
        self.state = state
        self.view = view ?? TrustView(files: state.files)
        self.references = references ?? ReferenceIndex()
    }

    /// Applies the trust root's whole tree: trusted as it is, valid files only,
    /// where valid includes the rules that span manifests. A file that breaks
    /// one is left out, and so, in turn, is what only it made whole.
    public mutating func applyTrustRoot(id: String, files: [FileChange]) {
        prepare(files)
        for change in files.sorted(by: { $0.path < $1.path }) {
            guard change.content != nil else { continue }
            switch version(of: change) {
            case .failure(let problem):
                state.refused[change.path] = RefusedChange(
                    path: change.path, commit: id, by: "trust root", reason: .invalid, rule: problem.rule,
                    message: DiagnosticFormatter.headline(problem), blob: change.blob)
            case .success(let file):
                state.files[change.path] = EffectiveFile(
                    file: file, blob: change.blob ?? "", commit: id, authorizedBy: "trust root",
                    approval: MarketplacePath.isSubscription(change.path) ? Approval(commit: id, approver: "trust root") : nil)
            }
        }
        while true {
            let errors = ReferenceCheck.errors(in: state.sourceFiles)
            guard !errors.isEmpty else { break }
            for (path, problem) in errors {
                let blob = state.files.removeValue(forKey: path)?.blob
                state.refused[path] = RefusedChange(
                    path: path, commit: id, by: "trust root", reason: .invalid, rule: problem.rule,
                    message: DiagnosticFormatter.headline(problem), blob: blob)
            }
        }
        state.revision = id
        view = TrustView(files: state.files)
        references = ReferenceIndex()
    }

    /// Applies one commit of the first-parent chain.
    public mutating func apply(_ commit: ReplayCommit) {
        let merger: Identity
        switch commit.assumedMerger {
        case .person(let email): merger = .person(email.lowercased())
        case .anyApprover: merger = .anyApprover
        case nil: merger = view.identity(author: commit.author, signature: commit.signature)
        }
        let sideIdentities = commit.sideCommits.map { ($0, view.identity(author: $0.author, signature: $0.signature)) }
        var candidates: [Candidate] = []
        for change in commit.changes.sorted(by: { $0.path < $1.path }) {
            touchedPaths.insert(change.path)
            var makers = [merger]
            for (side, identity) in sideIdentities where side.paths.contains(change.path) {
                makers.append(identity)
            }
            let by = describe(merger: merger, commit: commit, sides: sideIdentities.filter { $0.0.paths.contains(change.path) }.map(\.1))
            if let candidate = decide(change, commit: commit.id, makers: makers, by: by) {
                candidates.append(candidate)
            }
        }
        // Approvals in place: the commit's own, and on a merge those of the commits it
        // brings in, each made by its commit's maker or by the merger.
        let changedPaths = Set(commit.changes.map(\.path))
        var approvals = commit.approvals.map { ($0, [merger]) }
        for (side, identity) in sideIdentities {
            approvals += side.approvals.map { ($0, [merger, identity]) }
        }
        var approved = Set<String>()
        for (approval, makers) in approvals where !changedPaths.contains(approval.path) && !approved.contains(approval.path) {
            if let candidate = approveInPlace(approval, commit: commit.id, makers: makers) {
                approved.insert(approval.path)
                touchedPaths.insert(approval.path)
                candidates.append(candidate)
            }
        }
        var changed: [String] = []
        for candidate in checkReferences(candidates, commit: commit.id) {
            switch candidate.outcome {
            case .put(let file):
                state.refused[candidate.path] = nil
                state.files[candidate.path] = file
                references.update(candidate.path, file: file.file)
                changed.append(candidate.path)
            case .remove:
                state.refused[candidate.path] = nil
                if state.files.removeValue(forKey: candidate.path) != nil {
                    references.update(candidate.path, file: nil)
                    changed.append(candidate.path)
                }
            case .pending(let refused):
                state.refused[candidate.path] = refused
            }
        }
        state.revision = commit.id
        view.update(paths: changed, files: state.files)
    }

    // MARK: - Deciding one change

    /// A change that passed ownership and its file's own checks, before the rules
    /// that span manifests decide whether it takes effect.
    struct Candidate {
        enum Outcome {
            /// The version to put in force.
            case put(EffectiveFile)
            /// The path is deleted.
            case remove
            /// A subscription waiting for approval: checked, but not put in force.
            case pending(RefusedChange)
        }

        var path: String
        var outcome: Outcome
        /// Who made it, for a refusal's report.
        var by: String
        var blob: String?

        /// The version as the rules spanning manifests see it; `nil` for a deletion.
        var file: PreparedFile? {
            switch outcome {
            case .put(let file): return file.file
            case .remove: return nil
            case .pending(let refused): return refused.pending
            }
        }
    }

    /// Refuses one change, or returns it as a candidate to take effect.
    private mutating func decide(_ change: FileChange, commit: String, makers: [Identity], by: String) -> Candidate? {
        let owners = view.owners(of: change.path)
        let emails = Set(makers.compactMap(\.email))
        let trustsEveryone = view.verification == .none
        let isOwner = trustsEveryone || owners.includesAny(of: emails)

        func refuse(_ reason: RefusedChange.Reason, _ rule: RuleID, _ message: String, needs: [String] = []) -> Candidate? {
            state.refused[change.path] = RefusedChange(
                path: change.path, commit: commit, by: by, reason: reason, rule: rule,
                message: message, needs: needs, blob: change.blob)
            return nil
        }

        guard change.content != nil else {
            // Narrowing access needs no approval: a subscription may also be
            // revoked by an approver of its API's publisher.
            var allowed = isOwner
            if !allowed, MarketplacePath.isSubscription(change.path), let current = state.files[change.path],
                let publisher = TrustView.publisher(ofSubscription: current.file)
            {
                allowed = !emails.isDisjoint(with: view.approvers(of: publisher))
            }
            guard allowed else {
                return refuse(.unauthorized, .trustOwner, "deleting \(change.path) needs \(owners.description)", needs: owners.emails.sorted())
            }
            guard state.files[change.path] != nil else {
                state.refused[change.path] = nil
                return nil
            }
            return Candidate(path: change.path, outcome: .remove, by: by, blob: nil)
        }

        guard isOwner else {
            return refuse(.unauthorized, .trustOwner, "changing \(change.path) needs \(owners.description)", needs: owners.emails.sorted())
        }
        let file: PreparedFile
        switch version(of: change) {
        case .failure(let problem): return refuse(.invalid, problem.rule, DiagnosticFormatter.headline(problem))
        case .success(let valid): file = valid
        }
        if let current = state.files[change.path], current.content == file.bytes {
            // Already in force as it is: nothing to decide, and nothing outstanding.
            state.refused[change.path] = nil
            return nil
        }
        var approval: Approval?
        if MarketplacePath.isSubscription(change.path) {
            if trustsEveryone {
                approval = Approval(commit: commit, approver: makers.first?.email ?? "anyone")
            } else {
                guard let publisher = TrustView.publisher(ofSubscription: file) else {
                    return refuse(.invalid, .refApi, "the subscription names no API")
                }
                let approvers = view.approvers(of: publisher)
                guard let approver = view.approver(among: makers, of: publisher) else {
                    let message =
                        approvers.isEmpty
                        ? "waiting for approval, but publisher \(publisher) has no approvers"
                        : "waiting for an approver of \(publisher) to merge it"
                    let pending = RefusedChange(
                        path: change.path, commit: commit, by: by, reason: .pendingApproval, rule: .trustApproval,
                        message: message, needs: approvers.sorted(), blob: change.blob, pending: file)
                    return Candidate(path: change.path, outcome: .pending(pending), by: by, blob: change.blob)
                }
                approval = Approval(commit: commit, approver: approver)
            }
        }
        let effective = EffectiveFile(
            file: file, blob: change.blob ?? "", commit: commit,
            authorizedBy: emails.sorted().first ?? "anyone", approval: approval)
        return Candidate(path: change.path, outcome: .put(effective), by: by, blob: change.blob)
    }

    /// An approver's approval in place of a subscription change already on the
    /// branch (`Setu-Approve: <path> <blob>`): it approves that version and no
    /// other, and only when its maker approves for the API's publisher.
    private func approveInPlace(_ approval: ReplayCommit.InPlaceApproval, commit: String, makers: [Identity]) -> Candidate? {
        guard let waiting = state.refused[approval.path], waiting.reason == .pendingApproval,
            let blob = waiting.blob, blob == approval.blob,
            let file = waiting.pending, let publisher = TrustView.publisher(ofSubscription: file)
        else { return nil }
        guard let approver = view.approver(among: makers, of: publisher) else { return nil }
        let effective = EffectiveFile(
            file: file, blob: blob, commit: commit, authorizedBy: waiting.by,
            approval: Approval(commit: commit, approver: approver))
        return Candidate(path: approval.path, outcome: .put(effective), by: "approval by \(approver)", blob: blob)
    }

    // MARK: - Rules that span manifests

    /// Keeps of `candidates` those that leave the effective state whole (DESIGN.md §4):
    /// every reference resolves, base paths do not clash, each consumer may use what
    /// it subscribes to. The others are refused as invalid, naming the rule and the
    /// file. A publisher's withdrawal that ends subscriptions (a plan no longer
    /// offered, an operation or an API gone) is not a broken reference: it ends the
    /// entitlements, which `setu plan` and the daemon report.
    private mutating func checkReferences(_ candidates: [Candidate], commit: String) -> [Candidate] {
        // Deleting a subscription narrows access: no rule can refuse it.
        var kept: [Candidate] = [], remaining: [Candidate] = []
        for candidate in candidates {
            if candidate.file == nil && MarketplacePath.isSubscription(candidate.path) {
                kept.append(candidate)
            } else {
                remaining.append(candidate)
            }
        }
        guard !remaining.isEmpty else { return kept }
        func refuse(_ candidate: Candidate, _ rule: RuleID, _ message: String) {
            state.refused[candidate.path] = RefusedChange(
                path: candidate.path, commit: commit, by: candidate.by, reason: .invalid,
                rule: rule, message: message, blob: candidate.blob)
        }
        while !remaining.isEmpty {
            var overrides: [String: PreparedFile?] = [:]
            for candidate in remaining { overrides[candidate.path] = .some(candidate.file) }
            let changes = remaining.map { ($0.path, $0.file) }
            // Most changes are judged on the few files they name, as already read; the rest on
            // every file they can reach, read as a marketplace.
            var checkedUpstreams = Set<String>()
            let focus = references.focus(of: changes, in: state.files, policies: view.policyPaths, checkedUpstreams: &checkedUpstreams)
            let scope = focus ?? references.scope(of: changes, in: state.files, policies: view.policyPaths, consumers: view.consumerMembers.keys)
            func files(_ useOverrides: Bool) -> [PreparedFile] {
                scope.sorted().compactMap { path in
                    useOverrides ? (overrides[path] ?? state.files[path]?.file) : state.files[path]?.file
                }
            }
            var index = references
            func check(_ useOverrides: Bool) -> [String: Diagnostic] {
                let known = { [state] in index.apiIDs(in: state.files) }
                guard focus == nil else {
                    return ReferenceCheck.errors(
                        in: files(useOverrides), judging: useOverrides ? Set(overrides.keys) : scope,
                        checkedUpstreams: checkedUpstreams, knownAPIs: known)
                }
                return ReferenceCheck.errors(in: files(useOverrides).map { SourceFile(path: $0.path, content: .prepared($0)) }, knownAPIs: known)
            }
            let errors = check(true)
            // The API ids a suggestion needed, if it did, stay indexed for the next one.
            references = index
            let own = remaining.filter { errors[$0.path] != nil }
            if !own.isEmpty {
                for candidate in own {
                    let problem = errors[candidate.path]!
                    refuse(candidate, problem.rule, DiagnosticFormatter.headline(problem))
                }
                let refused = Set(own.map(\.path))
                remaining.removeAll { refused.contains($0.path) }
                continue
            }
            // Files the commit leaves as they were, now broken by it; subscriptions
            // a publisher's withdrawal ends are not among them.
            var broken = errors.filter { overrides[$0.key] == nil && !MarketplacePath.isSubscription($0.key) }
            if !broken.isEmpty {
                let before = check(false)
                broken = broken.filter { before[$0.key].map(DiagnosticFormatter.headline) != DiagnosticFormatter.headline($0.value) }
            }
            guard let (path, problem) = broken.min(by: { $0.key < $1.key }) else { break }
            // A subscription can break no other file: the commit's other changes did.
            let culprits = remaining.filter { !MarketplacePath.isSubscription($0.path) }
            guard !culprits.isEmpty else { break }
            for candidate in culprits {
                refuse(candidate, problem.rule, "would leave \(path) invalid: \(DiagnosticFormatter.headline(problem))")
            }
            remaining.removeAll { !MarketplacePath.isSubscription($0.path) }
        }
        kept += remaining
        return kept
    }

    /// A changed path's new version, read and checked (ahead of time by
    /// `prepare`, when it was given the change), or its first problem.
    private func version(of change: FileChange) -> Result<PreparedFile, Diagnostic> {
        let file: PreparedFile
        switch change.content {
        case .bytes(let bytes)?:
            file = change.blob.flatMap { prepared[change.path + "\u{0}" + $0] } ?? validator.prepare(path: change.path, bytes: bytes)
        case .prepared(let known)?:
            file = known
        case let other?:
            // Links, submodules and files over the size limit are refused for what they are.
            let problems = validator.checkFile(SourceFile(path: change.path, content: other))
            return .failure(problems.first ?? Diagnostic(file: change.path, rule: .fileUnreadable, message: "the file cannot be read"))
        case nil:
            preconditionFailure("a deletion has no version")
        }
        if let problem = file.problems.first { return .failure(problem) }
        return .success(file)
    }

    /// Reads and checks, in parallel, every new version the changes bring, before
    /// they are replayed: whether a version is valid depends only on its path and
    /// bytes, while deciding who may change it must go commit by commit.
    public mutating func prepare(_ changes: some Sequence<FileChange>) {
        prepared.merge(Self.preparedVersions(of: changes, except: prepared)) { first, _ in first }
    }

    /// Uses versions read and checked ahead of time (`preparedVersions`) in place of those held now.
    mutating func usePrepared(_ versions: [String: PreparedFile]) {
        prepared = versions
    }

    /// Reads and checks, in parallel, every new version the changes bring that
    /// `known` does not hold: by path and blob id.
    static func preparedVersions(
        of changes: some Sequence<FileChange>,
        except known: [String: PreparedFile] = [:]
    ) -> [String: PreparedFile] {
        var seen = Set<String>()
        var pending: [(key: String, path: String, bytes: [UInt8])] = []
        for change in changes {
            guard case .bytes(let bytes)? = change.content, let blob = change.blob else { continue }
            let key = change.path + "\u{0}" + blob
            if known[key] == nil, seen.insert(key).inserted {
                pending.append((key, change.path, bytes))
            }
        }
        let files = MarketplaceValidator().prepare(pending.map { ($0.path, $0.bytes) })
        var versions: [String: PreparedFile] = [:]
        versions.reserveCapacity(files.count)
        for (item, file) in zip(pending, files) {
            versions[item.key] = file
        }
        return versions
    }

    /// Forgets the versions prepared ahead of time (those in force stay in the state).
    public mutating func forgetPrepared() {
        prepared = [:]
    }

    private func describe(merger: Identity, commit: ReplayCommit, sides: [Identity]) -> String {
        guard commit.isMerge else { return merger.description }
        let authors = Set(sides.map(\.description)).sorted()
        return "merge by \(merger.description)" + (authors.isEmpty ? "" : " of commits by \(authors.joined(separator: ", "))")
    }
}

/// Who made a commit, as the verification mode can tell.
enum Identity: Sendable, CustomStringConvertible {
    /// Verification is `none`: every change counts.
    case anyone
    /// An identified person, by email.
    case person(String)
    /// Nobody can be identified (unsigned, or a signature that does not verify).
    case unidentified(String)
    /// A planned merge by whichever approver a subscription needs.
    case anyApprover

    var email: String? {
        if case .person(let email) = self { return email }
        return nil
    }

    var description: String {
        switch self {
        case .anyone: return "anyone"
        case .person(let email): return email
        case .unidentified(let reason): return "unidentified (\(reason))"
        case .anyApprover: return "an approver"
        }
    }
}

/// Who owns what and who approves what, read from the effective state.
struct TrustView: Sendable {
    var verification: Platform.Verification = .none
    var admins: Set<String> = []
    var publisherMembers: [String: Set<String>] = [:]
    var publisherApprovers: [String: Set<String>] = [:]
    var consumerMembers: [String: Set<String>] = [:]
    /// The files under `policies/`.
    var policyPaths: Set<String> = []
    var keyOwners: [SSHPublicKey: String] = [:]
    private var keysByPath: [String: [SSHPublicKey: String]] = [:]

    init(files: [String: EffectiveFile]) {
        update(paths: Array(files.keys), files: files)
    }

    /// Restores a view `write(to:)` wrote.
    init(from reader: inout ByteReader) throws {
        guard let mode = Platform.Verification(rawValue: try reader.readString()) else { throw ByteReader.Truncated() }
        verification = mode
        admins = Set(try reader.readStrings())
        func readGroups() throws -> [String: Set<String>] {
            var groups: [String: Set<String>] = [:]
            for _ in 0..<(try reader.readCount()) {
                groups[try reader.readString()] = Set(try reader.readStrings())
            }
            return groups
        }
        publisherMembers = try readGroups()
        publisherApprovers = try readGroups()
        consumerMembers = try readGroups()
        policyPaths = Set(try reader.readStrings())
        for _ in 0..<(try reader.readCount()) {
            let path = try reader.readString()
            var keys: [SSHPublicKey: String] = [:]
            for _ in 0..<(try reader.readCount()) {
                keys[SSHPublicKey(algorithm: try reader.readString(), blob: try reader.readBytes())] = try reader.readString()
            }
            keysByPath[path] = keys
        }
        collectKeyOwners()
    }

    /// The view's binary form, which the replay state keeps as an opaque section.
    var bytes: [UInt8] {
        var writer = ByteWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// Appends the view's binary form, for the replay state.
    func write(to writer: inout ByteWriter) {
        writer.write(verification.rawValue)
        writer.write(admins.sorted())
        for groups in [publisherMembers, publisherApprovers, consumerMembers] {
            writer.write(groups.count)
            for name in groups.keys.sorted() {
                writer.write(name)
                writer.write(groups[name]!.sorted())
            }
        }
        writer.write(policyPaths.sorted())
        writer.write(keysByPath.count)
        for path in keysByPath.keys.sorted() {
            writer.write(path)
            let keys = keysByPath[path]!
            writer.write(keys.count)
            let sorted = keys.sorted { a, b in
                a.key.algorithm != b.key.algorithm ? a.key.algorithm < b.key.algorithm : a.key.blob.lexicographicallyPrecedes(b.key.blob)
            }
            for (key, email) in sorted {
                writer.write(key.algorithm)
                writer.write(key.blob)
                writer.write(email)
            }
        }
    }

    /// Re-reads the ownership files among `paths`: the platform policy and every
    /// publisher and consumer registration. They are validated together, in one
    /// pass, since a trust root or a stored state brings all of them at once.
    mutating func update(paths: [String], files: [String: EffectiveFile]) {
        for path in paths where path.hasPrefix("policies/") {
            if files[path] != nil { policyPaths.insert(path) } else { policyPaths.remove(path) }
        }
        let ownership = paths.filter(MarketplacePath.isRegistration)
        guard !ownership.isEmpty else { return }
        let present = ownership.compactMap { path in files[path].map { SourceFile(path: path, content: .prepared($0.file)) } }
        let marketplace = MarketplaceValidator().validate(present).marketplace
        for path in ownership {
            let parts = path.split(separator: "/").map(String.init)
            let exists = files[path] != nil
            var members: [Member] = []
            switch parts[0] {
            case "policies":
                let platform = exists ? marketplace.platform : nil
                verification = platform?.verification ?? .none
                admins = Set(platform?.admins.map { $0.email.lowercased() } ?? [])
                members = platform?.admins ?? []
            case "catalog":
                let publisher = exists ? marketplace.publishers[parts[1]] : nil
                publisherMembers[parts[1]] = publisher.map { Set($0.members.map { $0.email.lowercased() }) }
                publisherApprovers[parts[1]] = publisher.map { Set($0.approvers.map { $0.email.lowercased() }) }
                members = (publisher?.members ?? []) + (publisher?.approvers ?? [])
            default:
                let consumer = exists ? marketplace.consumers[parts[1]] : nil
                consumerMembers[parts[1]] = consumer.map { Set($0.members.map { $0.email.lowercased() }) }
                members = consumer?.members ?? []
            }
            var keys: [SSHPublicKey: String] = [:]
            for member in members {
                for line in member.sshKeys {
                    if let key = SSHPublicKey(authorizedKey: line) { keys[key] = member.email.lowercased() }
                }
            }
            keysByPath[path] = keys.isEmpty ? nil : keys
        }
        collectKeyOwners()
    }

    /// Who holds each key: where two registrations list the same key, the first by path.
    private mutating func collectKeyOwners() {
        keyOwners = [:]
        for (_, keys) in keysByPath.sorted(by: { $0.key < $1.key }) {
            keyOwners.merge(keys) { first, _ in first }
        }
    }

    func identity(author: Person, signature: CommitSignature?) -> Identity {
        switch verification {
        case .none:
            return .anyone
        case .authors:
            return .person(author.email.lowercased())
        case .signatures:
            guard let signature else { return .unidentified("unsigned commit by \(author.email)") }
            do {
                let key = try SSHSignature.signer(of: signature.signature, message: signature.payload, keys: Set(keyOwners.keys))
                return .person(keyOwners[key]!)
            } catch {
                return .unidentified(error.description)
            }
        }
    }

    /// Who may change a path: the members of the publisher or consumer whose
    /// folder it is (none while the folder is new) and the platform's admins.
    struct Owners {
        var members: Set<String>?
        var admins: Set<String>
        /// `publisher cbse`, `consumer acme-bank`, or nil for the platform's own files.
        var folder: String?

        func includesAny(of emails: Set<String>) -> Bool {
            !emails.isDisjoint(with: admins) || members.map { !emails.isDisjoint(with: $0) } == true
        }

        var emails: Set<String> { admins.union(members ?? []) }

        var description: String {
            guard let folder else { return "a platform admin" }
            guard members != nil else {
                return "a platform admin, since \(folder) is new"
            }
            return "a member of \(folder) or a platform admin"
        }
    }

    /// Who may change a path. Asked for every change replayed, so it builds no sets and no words.
    func owners(of path: String) -> Owners {
        let parts = path.split(separator: "/", maxSplits: 2)
        guard parts.count == 3 else { return Owners(members: nil, admins: admins, folder: nil) }
        let name = String(parts[1])
        switch parts[0] {
        case "catalog": return Owners(members: publisherMembers[name], admins: admins, folder: "publisher " + name)
        case "subscriptions": return Owners(members: consumerMembers[name], admins: admins, folder: "consumer " + name)
        default: return Owners(members: nil, admins: admins, folder: nil)
        }
    }

    func approvers(of publisher: String) -> Set<String> {
        publisherApprovers[publisher] ?? []
    }

    /// Which of `makers` approves for `publisher`: an approver's email, or, for a planned
    /// merge by whichever approver is needed, that approver in words; nil when none does.
    func approver(among makers: [Identity], of publisher: String) -> String? {
        let approvers = approvers(of: publisher)
        if let email = makers.compactMap(\.email).first(where: approvers.contains) { return email }
        let anyApprover = makers.contains { if case .anyApprover = $0 { true } else { false } }
        return anyApprover && !approvers.isEmpty ? "an approver of \(publisher)" : nil
    }

    /// The publisher of the API a subscription names.
    static func publisher(ofSubscription file: PreparedFile) -> String? {
        guard let api = file.subscriptions.first?.api, let slash = api.firstIndex(of: "/") else { return nil }
        return String(api[..<slash])
    }
}
