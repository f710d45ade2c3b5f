import Dispatch
import SetuConcurrency
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuSources
import SetuState
import SetuStorage

/// Reads a branch's history from git into the values `HistoryReplay` decides on.
public struct HistoryReader {
    let repository: Repository
    let limits: LoadLimits

    /// Creates a reader.
    public init(repository: Repository, limits: LoadLimits = .standard) {
        self.repository = repository
        self.limits = limits
    }

    /// The first-parent chain from `head` back to `root` (or to the root commit),
    /// oldest first, including both ends.
    public func firstParentChain(to head: ObjectID, from root: ObjectID? = nil) throws -> [ObjectID] {
        let chain = try repository.firstParentChain(from: head, stoppingAt: root)
        if let root, chain.last != root {
            throw GitError(
                code: .revisionNotFound,
                message: "the trust root \(root.short) is not on the first-parent history of \(head.short)")
        }
        return chain.reversed()
    }

    /// The first-parent commits after `base` up to `head`, oldest first; `nil`
    /// when `base` is not on `head`'s first-parent history.
    public func commitsAfter(_ base: ObjectID, upTo head: ObjectID) throws -> [ObjectID]? {
        let chain = try repository.firstParentChain(from: head, stoppingAt: base)
        guard chain.last == base else { return nil }
        return chain.dropLast().reversed()
    }

    /// `replayCommit` for many commits, in order. Large batches are read in
    /// parallel, each thread with a handle of its own on the repository, since a
    /// libgit2 handle serves one thread at a time.
    public func replayCommits(_ ids: [ObjectID]) throws -> [ReplayCommit] {
        let batches = min(Parallel.cores, ids.count / 500)
        guard batches > 1 else { return try ids.map { try replayCommit(repository.commit($0)) } }
        let path = repository.path
        let limits = self.limits
        let size = (ids.count + batches - 1) / batches
        let results = ids.withUnsafeBufferPointer { buffer in
            let pending = UnsafeSendable(buffer)
            return Parallel.map(batches, minimum: 2) { batch -> Result<[ReplayCommit], Error> in
                Result {
                    let reader = HistoryReader(repository: try Repository(path: path), limits: limits)
                    return try pending.value[batch * size..<min(pending.value.count, (batch + 1) * size)].map {
                        try reader.replayCommit(reader.repository.commit($0))
                    }
                }
            }
        }
        return try results.flatMap { try $0.get() }
    }

    /// Every marketplace file of a commit, as changes from nothing.
    public func tree(of commit: ObjectID) throws -> [FileChange] {
        try repository.files(in: commit, under: marketplaceRoots).map(change)
    }

    /// One commit of the chain: its changes against its first parent and, for a
    /// merge, the side-branch commits it brings in.
    public func replayCommit(_ commit: Commit) throws -> ReplayCommit {
        var changes = try repository.changedPaths(from: commit.parents.first, to: commit.id, under: marketplaceRoots).map(change)
        var sides: [SideCommit] = []
        if commit.parents.count > 1 {
            // The usual branch is one commit on top of the first parent: no walk needed for it.
            let tip = try repository.commit(commit.parents[1])
            if commit.parents.count == 2, tip.parents == [commit.parents[0]] {
                // One commit on top of the first parent; when the merge took its tree
                // as it is, the commit changed exactly what the merge brings.
                let paths = tip.tree == commit.tree ? Set(changes.map(\.path)) : nil
                sides = [try sideCommit(tip, paths: paths)]
            } else {
                sides = try repository.commits(reachableFrom: commit.parents[1], hiding: [commit.parents[0]]).map { try sideCommit($0) }
            }
            // A path the side branch changed counts as changed by the merge even when
            // the first parent already had the same bytes (say, from a refused commit):
            // the merge is what can make it take effect.
            let diffed = Set(changes.map(\.path))
            let touched = Set(sides.flatMap(\.paths)).subtracting(diffed)
            for path in touched.sorted() {
                if let file = try repository.file(in: commit.id, at: path) {
                    changes.append(try change(file))
                }
            }
        }
        return ReplayCommit(
            id: commit.id.hex, author: commit.author, signature: try repository.signature(of: commit.id),
            changes: changes, sideCommits: sides, isMerge: commit.isMerge,
            approvals: ReplayCommit.InPlaceApproval.all(in: commit.message))
    }

    /// The merge `setu plan` asks about: `head`'s changes since it forked from
    /// `base`, with the commits only `head` has as its side branch.
    func plannedMerge(of head: ObjectID, into base: ObjectID, by merger: ReplayCommit.AssumedMerger) throws -> ReplayCommit {
        let fork = try repository.mergeBase(base, head) ?? base
        let commit = try repository.commit(head)
        var merge = ReplayCommit(
            id: "planned-merge", author: commit.author, signature: nil,
            changes: try repository.changedPaths(from: fork, to: head, under: marketplaceRoots).map(change),
            sideCommits: try repository.commits(reachableFrom: head, hiding: [base]).map { try sideCommit($0) }, isMerge: true)
        merge.assumedMerger = merger
        return merge
    }

    /// A side-branch commit: who made it and which marketplace paths it touched.
    /// `paths`, when given, are the paths it touched, known without a diff.
    private func sideCommit(_ side: Commit, paths: Set<String>? = nil) throws -> SideCommit {
        let touched = try paths ?? Set(repository.changedPaths(from: side.parents.first, to: side.id, under: marketplaceRoots).map(\.path))
        return SideCommit(
            id: side.id.hex, author: side.author, signature: try repository.signature(of: side.id), paths: touched,
            approvals: ReplayCommit.InPlaceApproval.all(in: side.message))
    }

    private func change(_ changed: ChangedPath) throws -> FileChange {
        guard let file = changed.file else { return FileChange(path: changed.path, content: nil, blob: nil) }
        return try change(file)
    }

    private func change(_ file: TreeFile) throws -> FileChange {
        FileChange(path: file.path, content: try GitMarketplaceReader.content(of: file, in: repository, limits: limits), blob: file.id.hex)
    }
}

/// The result of bringing the effective state up to a head.
public struct ReplayOutcome: Sendable {
    /// The effective state at the head.
    public var state: EffectiveState
    /// The trust root replay started from.
    public var trustRoot: ObjectID
    /// How many commits were replayed in this run (the trust root counts as one).
    public var replayedCommits: Int
    /// Whether a stored state was reused, so only new commits were replayed.
    public var incremental: Bool
    /// For an incremental run, the revision the stored state was at.
    public var startRevision: String?
    /// For an incremental run, every path the new commits changed (applied or refused).
    public var touchedPaths: Set<String> = []
    /// Set when the stored state's head is no longer on the branch's history
    /// (a force push): what happened, for the status report.
    public var rewrittenHistory: String?
    /// Who owns and approves what at the state, as replay left it.
    var view: TrustView?
    /// Where the state's files are, as replay left it.
    var references: ReferenceIndex?
    /// How the state directory's copy relates to this state, when it has one.
    var journal: ReplayStore.Journal?
    /// The state being written to the state directory on another thread, when it is.
    var saving: Background<ReplayStore.Journal>?
    /// Where the state is to be written when asked (`ReplaySaving.whenAsked`), until it is.
    var unsaved: ReplayStore?

    /// Starts writing the state to the state directory on another thread, when it waits
    /// to be (`ReplaySaving.whenAsked`).
    public mutating func startSaving() {
        guard let store = unsaved.take() else { return }
        let view = view ?? TrustView(files: state.files)
        let (trustRoot, state, journal) = (trustRoot.hex, state, journal)
        saving = Background { try store.save(trustRoot: trustRoot, state: state, view: view.bytes, journal: journal) }
    }

    /// Waits until the state is written to the state directory (see `ReplaySaving`);
    /// throws what writing it threw.
    public func finishSaving() throws {
        _ = try saving?.value()
    }
}

/// When `TrustEngine.replay` writes the state it reaches to the state directory.
public enum ReplaySaving: Sendable {
    /// Before it returns.
    case waits
    /// On another thread, while the caller goes on; `ReplayOutcome.finishSaving` waits for it.
    case inBackground
    /// When the caller asks, with `ReplayOutcome.startSaving`: a daemon writes between
    /// reconciles, as a thread started during one would take a core from it.
    case whenAsked
}

extension HistoryReplay {
    /// Reads and applies commits of the first-parent chain, their new versions
    /// checked in parallel first. A long history goes in windows of a thousand
    /// commits: while one window is applied (which must go commit by commit), the
    /// next two are read and checked on other threads, and what is held at once
    /// (three windows' contents and prepared versions) stays bounded.
    mutating func apply(_ commits: [ObjectID], from reader: HistoryReader) throws {
        struct Window: Sendable {
            var commits: [ReplayCommit]
            var prepared: [String: PreparedFile]
        }
        // Two windows are read ahead, so the readers go on while one slow window is applied;
        // a window is large enough for `replayCommits` to read it on every core.
        let size = 1024
        let ahead = 2
        let windows = stride(from: 0, to: commits.count, by: size).map { Array(commits[$0..<min(commits.count, $0 + size)]) }
        guard !windows.isEmpty else { return }
        // The reading thread uses the repository handle alone: applying never touches it.
        let shared = UnsafeSendable(reader)
        func read(_ window: [ObjectID]) -> Background<Window> {
            Background {
                let commits = try shared.value.replayCommits(window)
                return Window(commits: commits, prepared: HistoryReplay.preparedVersions(of: commits.lazy.flatMap(\.changes)))
            }
        }
        var pending = windows.prefix(ahead).map(read)
        for index in windows.indices {
            let window = try pending.removeFirst().value()
            if index + ahead < windows.count {
                pending.append(read(windows[index + ahead]))
            }
            usePrepared(window.prepared)
            for commit in window.commits {
                apply(commit)
            }
        }
        forgetPrepared()
    }
}

/// Replays a branch from its trust root to a head and returns the effective state.
public enum TrustEngine {
    /// Replays from `trustRoot` (default: the root commit of the first-parent
    /// chain) to `head`. With a `stateDirectory`, the result is stored there and
    /// the next run replays only the commits after the stored head; a stored head
    /// that is no longer on the history is detected and replayed from the root.
    ///
    /// A long-running caller passes the outcome it got last time as `previous`: it stands
    /// for the stored state, which is then not read back from the state directory. It is
    /// taken over, not copied: the caller keeps no other reference to it, so the replay
    /// changes its tens of thousands of files in place.
    /// `saving` says when the state is written.
    public static func replay(
        _ repository: Repository, head: ObjectID, trustRoot: ObjectID? = nil,
        stateDirectory: String? = nil, previous: consuming ReplayOutcome? = nil,
        saving: ReplaySaving = .waits, limits: LoadLimits = .standard
    ) throws -> ReplayOutcome {
        func save(_ outcome: inout ReplayOutcome, to store: ReplayStore) throws {
            switch saving {
            case .waits:
                let view = outcome.view ?? TrustView(files: outcome.state.files)
                outcome.journal = try store.save(
                    trustRoot: outcome.trustRoot.hex, state: outcome.state, view: view.bytes, journal: outcome.journal)
            case .inBackground:
                outcome.unsaved = store
                outcome.startSaving()
            case .whenAsked:
                outcome.unsaved = store
            }
        }
        let reader = HistoryReader(repository: repository, limits: limits)
        let store = stateDirectory.map(ReplayStore.init)
        var rewritten: String?
        var kept: KeptReplay?
        var keptReferences: ReferenceIndex?
        if var last = previous.take(), let head = ObjectID(hex: last.state.revision) {
            var state = EffectiveState(revision: "")
            swap(&state, &last.state)
            let view = last.view ?? TrustView(files: state.files)
            kept = KeptReplay(
                trustRoot: last.trustRoot, head: head, state: consume state, view: view,
                journal: (try? last.saving?.value()) ?? last.journal)
            keptReferences = last.references
        }
        let fromKept = kept != nil
        if var stored = kept.take() ?? store?.load().flatMap(KeptReplay.init),
            trustRoot == nil || stored.trustRoot == trustRoot
        {
            if let newer = try reader.commitsAfter(stored.head, upTo: head) {
                // Handed over rather than shared, so the replay changes the state in place instead of copying it.
                var state = EffectiveState(revision: "")
                swap(&state, &stored.state)
                var replay = HistoryReplay(state: consume state, view: stored.view, references: keptReferences)
                try replay.apply(newer, from: reader)
                var journal = stored.journal
                journal?.paths.formUnion(replay.touchedPaths)
                var outcome = ReplayOutcome(
                    state: replay.state, trustRoot: stored.trustRoot, replayedCommits: newer.count,
                    incremental: true, startRevision: stored.head.hex, touchedPaths: replay.touchedPaths,
                    rewrittenHistory: nil, view: replay.view, references: replay.references, journal: journal)
                if let store, !newer.isEmpty || fromKept {
                    try save(&outcome, to: store)
                }
                return outcome
            }
            rewritten =
                "history was rewritten: the stored head \(stored.head.short) is no longer on the first-parent history of \(head.short); replayed from the trust root"
        }
        let chain = try reader.firstParentChain(to: head, from: trustRoot)
        var replay = HistoryReplay(state: EffectiveState(revision: ""))
        replay.applyTrustRoot(id: chain[0].hex, files: try reader.tree(of: chain[0]))
        try replay.apply(Array(chain.dropFirst()), from: reader)
        var outcome = ReplayOutcome(
            state: replay.state, trustRoot: chain[0], replayedCommits: chain.count,
            incremental: false, rewrittenHistory: rewritten, view: replay.view, references: replay.references)
        if let store {
            try save(&outcome, to: store)
        }
        return outcome
    }

    /// Starts reading the entitlements kept in a state directory on another
    /// thread, so the read overlaps replaying history (`MarketplaceEngine`).
    static func readKeptEntitlements(in stateDirectory: String) -> KeptEntitlements {
        KeptEntitlements(read: Background { EntitlementStore(stateDirectory).load() })
    }
}

/// Entitlements being read from a state directory (`TrustEngine.readKeptEntitlements`).
struct KeptEntitlements: Sendable {
    let read: Background<(trustRoot: String, derived: DerivedEntitlements)?>
}

/// A replay to continue from: the last one of this process, or the one the state directory keeps.
struct KeptReplay {
    var trustRoot: ObjectID
    var head: ObjectID
    var state: EffectiveState
    var view: TrustView
    var journal: ReplayStore.Journal?

    init(trustRoot: ObjectID, head: ObjectID, state: consuming EffectiveState, view: TrustView, journal: ReplayStore.Journal?) {
        self.trustRoot = trustRoot
        self.head = head
        self.state = state
        self.view = view
        self.journal = journal
    }

    /// What the state directory keeps, or nil when it does not read (then a full replay follows).
    init?(_ stored: consuming ReplayStore.Stored) {
        var reader = ByteReader(stored.view)
        guard let trustRoot = ObjectID(hex: stored.trustRoot), let head = ObjectID(hex: stored.head),
            let view = try? TrustView(from: &reader), reader.isAtEnd
        else { return nil }
        var state = EffectiveState(revision: "")
        swap(&state, &stored.state)
        self.init(trustRoot: trustRoot, head: head, state: state, view: view, journal: stored.journal)
    }
}
