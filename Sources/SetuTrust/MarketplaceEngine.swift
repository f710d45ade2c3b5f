import SetuConcurrency
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuState

/// One branch's marketplace, brought up to date commit by commit: its effective state
/// (history replay), its entitlements and, for the gateway, its snapshot. A step after a
/// few commits costs work in proportion to what they changed: only the new commits are
/// replayed, and when they changed only subscriptions, only those consumers'
/// entitlements are derived again and only theirs change in the snapshot. A change that
/// can reach any entitlement (a policy, the catalog, a registration) or a new day
/// derives them all.
///
/// `setu status --state` opens one on the state directory for one step; `setu serve`
/// keeps one for the life of the process and steps it at every reconcile. With a state
/// directory, each step's replay and entitlements are written there on other threads, at
/// each step or when asked (`save`), so the next process starts where this one stopped.
public struct MarketplaceEngine: Sendable {
    /// Where the replay and the entitlements are kept between processes.
    public let stateDirectory: String?
    /// Whether each step starts writing its replay and entitlements, or only `save` does:
    /// the threads writing them would take cores from the steps of a daemon that follow.
    public let savesEachStep: Bool
    private var outcome: ReplayOutcome?
    private var derived: DerivedEntitlements?
    private var snapshot: GatewaySnapshot?
    /// The entitlements kept in the state directory, being read on another thread until the first step takes them.
    private var kept: KeptEntitlements?
    private var savingEntitlements: Background<Void>?
    /// The revision and day of the entitlements last written, or being written.
    private var savedEntitlements: (revision: String, today: String)?

    /// What one step found.
    public struct Step: Sendable {
        /// The replay up to the new head.
        public var outcome: ReplayOutcome
        /// The entitlements at the new head.
        public var derived: DerivedEntitlements
        /// The gateway's snapshot, when the step was asked for it.
        public var snapshot: GatewaySnapshot?
        /// Whether every entitlement was derived again (and the whole marketplace validated).
        public var derivedWhole: Bool
        /// Entitlements that were active before the step and are not after it: each as it is
        /// now (invalid or expired, with why), or as it was when its subscription is gone.
        /// Empty for the first step of a process.
        public var ended: [Entitlement]
    }

    /// An engine that starts, at its first step, from what the state directory keeps (if any).
    public init(stateDirectory: String?, savesEachStep: Bool = true) {
        self.stateDirectory = stateDirectory
        self.savesEachStep = savesEachStep
        kept = stateDirectory.map(TrustEngine.readKeptEntitlements)
    }

    /// Brings the marketplace to `head`.
    /// - Parameters:
    ///   - today: the day expiry is judged by, `YYYY-MM-DD`.
    ///   - snapshot: whether to build the gateway's snapshot.
    public mutating func step(
        _ repository: Repository, to head: ObjectID, trustRoot: ObjectID? = nil, today: String,
        snapshot wantsSnapshot: Bool = false, limits: LoadLimits = .standard
    ) throws -> Step {
        // Handed over, so the replay changes the files in place; a failed step leaves the
        // engine to start again from the state directory.
        var outcome = try TrustEngine.replay(
            repository, head: head, trustRoot: trustRoot, stateDirectory: stateDirectory,
            previous: self.outcome.take(), saving: savesEachStep ? .inBackground : .whenAsked, limits: limits)
        var previous = derived.take()
        if previous == nil, let read = kept.take() {
            previous = try read.read.take()?.flatMap { $0.trustRoot == outcome.trustRoot.hex ? $0.derived : nil }
        }
        // What changed since the entitlements before: nothing, a few consumers' subscriptions, or anything.
        var changed: Set<String>?
        var report: EntitlementReport?
        let next: DerivedEntitlements
        if let unchanged = previous, unchanged.revision == outcome.state.revision, unchanged.today == today {
            next = unchanged
            changed = []
        } else if let before = previous.take(), outcome.incremental, before.revision == outcome.startRevision,
            let updated = Self.update(before, to: &outcome, today: today)
        {
            next = updated
            changed = before.today == today ? Set(outcome.touchedPaths.compactMap(MarketplacePath.subscriptionConsumer)) : nil
        } else {
            let whole = EntitlementDerivation.derive(outcome.state, today: today)
            next = DerivedEntitlements(whole, today: today)
            report = whole
        }
        var built: GatewaySnapshot?
        var ended: [Entitlement] = []
        if wantsSnapshot {
            let before = snapshot
            if let before, report == nil {
                built =
                    changed?.isEmpty == true && before.revision == next.revision
                    ? before : before.replacingEntitlements(of: changed, from: next.entitlements, revision: next.revision)
            } else {
                let whole = report ?? EntitlementDerivation.derive(outcome.state, today: today)
                built = GatewaySnapshot(whole)
                changed = nil
            }
            if let before, let built { ended = Self.ended(from: before, to: built, consumers: changed, entitlements: next.entitlements) }
            snapshot = built
        }
        self.outcome = outcome
        derived = next
        // A step does not wait for the last one's write still going on; it skips its own, and
        // the state directory keeps an earlier step's entitlements until a later write.
        // A new process derives forward from those only when they match the stored replay.
        if savesEachStep, savingEntitlements?.isFinished ?? true { try startSavingEntitlements() }
        return Step(outcome: outcome, derived: next, snapshot: built, derivedWhole: report != nil, ended: ended)
    }

    /// Starts writing the last step's replay and entitlements to the state directory on
    /// other threads, unless they are written already; waits for a write of entitlements
    /// still going on first.
    public mutating func save() throws {
        outcome?.startSaving()
        guard let derived, savedEntitlements.map({ $0.revision != derived.revision || $0.today != derived.today }) ?? true else { return }
        try startSavingEntitlements()
    }

    private mutating func startSavingEntitlements() throws {
        guard let stateDirectory, let outcome, let derived else { return }
        try savingEntitlements?.value()
        let trustRoot = outcome.trustRoot.hex
        let saved = derived
        savingEntitlements = Background { try EntitlementStore(stateDirectory).save(saved, trustRoot: trustRoot) }
        savedEntitlements = (derived.revision, derived.today)
    }

    /// Waits until the last step's replay and the entitlements being written are in the
    /// state directory; throws what writing them threw.
    public func finishSaving() throws {
        try outcome?.finishSaving()
        try savingEntitlements?.value()
    }

    /// `EntitlementDerivation.update` with the folders of the state read from the replay's index.
    private static func update(
        _ previous: consuming DerivedEntitlements, to outcome: inout ReplayOutcome,
        today: String
    ) -> DerivedEntitlements? {
        var index = outcome.references ?? ReferenceIndex()
        let files = outcome.state.files
        let updated = EntitlementDerivation.update(previous, to: outcome.state, touched: outcome.touchedPaths, today: today) { folder in
            index.paths(in: folder, of: files)
        }
        outcome.references = index
        return updated
    }

    /// The entitlements active in `before` that are not in `after`, among `consumers` (all when nil).
    private static func ended(
        from before: GatewaySnapshot, to after: GatewaySnapshot, consumers: Set<String>?,
        entitlements: EntitlementList
    ) -> [Entitlement] {
        let names = consumers.map(Array.init) ?? Array(before.entitlements.keys)
        var ended: [Entitlement] = []
        for consumer in names.sorted() {
            let now = after.entitlements[consumer] ?? [:]
            for (api, entitlement) in (before.entitlements[consumer] ?? [:]).sorted(by: { $0.key < $1.key }) {
                if let current = now[api], current.path == entitlement.path { continue }
                ended.append(entitlements.entitlements(of: consumer).first { $0.path == entitlement.path && $0.api == api } ?? entitlement)
            }
        }
        return ended
    }
}
