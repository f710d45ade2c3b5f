import SetuEntitlements
import SetuGit
import SetuManifest

/// What merging a branch would change, for a reviewer (`setu plan BASE..HEAD`).
public struct MergePlan: Sendable {
    /// One entitlement change.
    public struct EntitlementChange: Sendable, Hashable, Codable {
        public enum Kind: String, Sendable, Hashable, Codable { case gained, lost, changed, requested }
        public var kind: Kind
        public var consumer: String
        public var subscription: String
        public var api: String
        public var plan: String
        /// For `changed`: what it was.
        public var previous: String?
        /// In words, e.g. "acme-bank gains cbse/class-xii-marksheet (standard)".
        public var sentence: String
    }

    /// One catalog change.
    public struct CatalogChange: Sendable, Hashable, Codable {
        public enum Kind: String, Sendable, Hashable, Codable { case added, removed, changed }
        public var kind: Kind
        public var what: String
        public var id: String
    }

    /// An approval in place (`Setu-Approve:`) that a commit of the branch carries, and what it does.
    public struct InPlaceApproval: Sendable, Hashable, Codable {
        public var path: String
        public var blob: String
        /// Whether it approves the version waiting at the path.
        public var approves: Bool
        /// What it does, in words.
        public var sentence: String
    }

    /// Entitlements before and after the merge.
    public var before: EntitlementReport
    public var after: EntitlementReport
    /// Changes of the branch that would not take effect, and why.
    public var refused: [RefusedChange]
    /// Who the merge was assumed to be made by, in words.
    public var mergedBy: String
    public var entitlementChanges: [EntitlementChange]
    public var catalogChanges: [CatalogChange]
    /// The approvals in place the branch's commits carry.
    public var approvals: [InPlaceApproval]
}

/// Simulates a merge of one revision into another on top of the replayed history.
public enum MergePlanner {
    /// - Parameters:
    ///   - base: the branch merged into, replayed from the trust root.
    ///   - head: the branch to merge.
    ///   - mergedBy: the merger's email; `nil` assumes whichever approver each
    ///     subscription needs.
    public static func plan(
        _ repository: Repository, base: ObjectID, head: ObjectID, mergedBy: String?,
        trustRoot: ObjectID?, stateDirectory: String?, today: String,
        limits: LoadLimits = .standard
    ) throws -> MergePlan {
        let replayed = try TrustEngine.replay(repository, head: base, trustRoot: trustRoot, stateDirectory: stateDirectory, limits: limits)
        let reader = HistoryReader(repository: repository, limits: limits)
        let merge = try reader.plannedMerge(of: head, into: base, by: mergedBy.map { .person($0) } ?? .anyApprover)
        var replay = HistoryReplay(state: replayed.state)
        replay.apply(merge)
        let before = EntitlementDerivation.derive(replayed.state, today: today)
        let after = EntitlementDerivation.derive(replay.state, today: today)
        let refused = replay.state.refused.values.filter { $0.commit == merge.id }.sorted { $0.path < $1.path }
        return MergePlan(
            before: before, after: after, refused: refused, mergedBy: mergedBy ?? "an approver",
            entitlementChanges: entitlementChanges(before, after, mergedBy: mergedBy),
            catalogChanges: catalogChanges(before.validation.marketplace, after.validation.marketplace),
            approvals: approvals(in: merge, before: replayed.state, after: replay.state))
    }

    /// What each approval in place among the branch's commits does once merged.
    static func approvals(in merge: ReplayCommit, before: EffectiveState, after: EffectiveState) -> [MergePlan.InPlaceApproval] {
        merge.sideCommits.flatMap(\.approvals).map { approval in
            let short = String(approval.blob.prefix(12))
            let sentence: String
            var approves = false
            if after.files[approval.path]?.approval?.commit == merge.id, after.files[approval.path]?.blob == approval.blob {
                approves = true
                sentence = "approves \(approval.path) at blob \(short)"
            } else if let waiting = before.refused[approval.path], waiting.reason == .pendingApproval {
                sentence =
                    waiting.blob == approval.blob
                    ? "names \(approval.path) at blob \(short), which is waiting, but its commit is not by an approver of the API's publisher"
                    : "names \(approval.path) at blob \(short), but the version waiting is blob \(waiting.blob?.prefix(12) ?? "?"): it approves nothing"
            } else {
                sentence = "names \(approval.path), where nothing waits for approval: it approves nothing"
            }
            return MergePlan.InPlaceApproval(path: approval.path, blob: approval.blob, approves: approves, sentence: sentence)
        }
    }

    static func entitlementChanges(_ before: EntitlementReport, _ after: EntitlementReport, mergedBy: String?) -> [MergePlan.EntitlementChange] {
        func key(_ entitlement: Entitlement) -> String { entitlement.consumer + "/" + entitlement.subscription }
        let active = { (report: EntitlementReport) in
            Dictionary(report.entitlements(.active).map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        }
        let old = active(before), new = active(after)
        let pendingBefore = Set(before.entitlements(.pending).map { key($0) + " " + $0.plan })
        var changes: [MergePlan.EntitlementChange] = []
        for (id, entitlement) in new.sorted(by: { $0.key < $1.key }) {
            let publisher = entitlement.api.split(separator: "/").first.map(String.init) ?? ""
            let when = mergedBy == nil ? " when merged by an approver of \(publisher)" : ""
            guard let previous = old[id] else {
                changes.append(
                    .init(
                        kind: .gained, consumer: entitlement.consumer, subscription: entitlement.subscription,
                        api: entitlement.api, plan: entitlement.plan, previous: nil,
                        sentence: "\(entitlement.consumer) gains \(entitlement.api) (\(entitlement.plan))\(when)"))
                continue
            }
            if previous.plan != entitlement.plan || previous.operations != entitlement.operations || previous.notAfter != entitlement.notAfter
                || previous.api != entitlement.api
            {
                let was = "\(previous.api) (\(previous.plan))"
                changes.append(
                    .init(
                        kind: .changed, consumer: entitlement.consumer, subscription: entitlement.subscription,
                        api: entitlement.api, plan: entitlement.plan, previous: was,
                        sentence: "\(entitlement.consumer)/\(entitlement.subscription) changes from \(was) to \(entitlement.api) (\(entitlement.plan))\(when)"))
            }
        }
        for (id, entitlement) in old.sorted(by: { $0.key < $1.key }) where new[id] == nil {
            changes.append(
                .init(
                    kind: .lost, consumer: entitlement.consumer, subscription: entitlement.subscription,
                    api: entitlement.api, plan: entitlement.plan, previous: nil,
                    sentence: "\(entitlement.consumer) loses \(entitlement.api) (\(entitlement.plan))"))
        }
        for entitlement in after.entitlements(.pending) where !pendingBefore.contains(key(entitlement) + " " + entitlement.plan) {
            changes.append(
                .init(
                    kind: .requested, consumer: entitlement.consumer, subscription: entitlement.subscription,
                    api: entitlement.api, plan: entitlement.plan, previous: nil,
                    sentence: "\(entitlement.consumer) requests \(entitlement.api) (\(entitlement.plan)): \(entitlement.reason ?? "pending")"))
        }
        return changes
    }

    static func catalogChanges(_ before: Marketplace, _ after: Marketplace) -> [MergePlan.CatalogChange] {
        var changes: [MergePlan.CatalogChange] = []
        func compare<Value: Equatable>(_ what: String, _ old: [String: Value], _ new: [String: Value], same: (Value, Value) -> Bool) {
            for id in Set(old.keys).union(new.keys).sorted() {
                switch (old[id], new[id]) {
                case (nil, .some): changes.append(.init(kind: .added, what: what, id: id))
                case (.some, nil): changes.append(.init(kind: .removed, what: what, id: id))
                case (.some(let a), .some(let b)) where !same(a, b): changes.append(.init(kind: .changed, what: what, id: id))
                default: break
                }
            }
        }
        compare("publisher", before.publishers, after.publishers) {
            var a = $0, b = $1; a.origin = b.origin; return a == b
        }
        compare("API", before.apis, after.apis) {
            var a = $0, b = $1; a.origin = b.origin; return a == b
        }
        compare("consumer", before.consumers, after.consumers) {
            var a = $0, b = $1; a.origin = b.origin; return a == b
        }
        compare("plan", before.plans, after.plans) {
            var a = $0, b = $1; a.origin = b.origin; return a == b
        }
        return changes
    }
}
