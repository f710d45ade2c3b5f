import SetuManifest

/// A consumer's right to call an API under a plan, and whether it is in force.
public struct Entitlement: Sendable, Hashable, Codable {
    /// Whether the entitlement is in force.
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        /// In force: the gateway admits the consumer's calls.
        case active
        /// Requested, waiting for an approver of the API's publisher.
        case pending
        /// Past its `notAfter` date.
        case expired
        /// Approved, but something it depends on is missing or wrong.
        case invalid
    }

    /// The consumer.
    public var consumer: String
    /// The subscription's name within the consumer.
    public var subscription: String
    /// The API id, `<publisher>/<name>`.
    public var api: String
    /// The plan.
    public var plan: String
    /// The operationIds allowed; `nil` for all.
    public var operations: [String]?
    /// The last day it is in force, if limited.
    public var notAfter: String?
    /// Whether it is in force.
    public var state: State
    /// Why it is not active, in words.
    public var reason: String?
    /// The approval that made it take effect (active, expired, invalid).
    public var approval: Approval?
    /// Who can approve it (pending).
    public var approvers: [String]
    /// The subscription's file.
    public var path: String
    /// The commit of the pending change (pending).
    public var requestedIn: String?

    /// Creates an entitlement.
    public init(
        consumer: String, subscription: String, api: String, plan: String, operations: [String]?, notAfter: String?,
        state: State, reason: String?, approval: Approval?, approvers: [String], path: String, requestedIn: String?
    ) {
        self.consumer = consumer
        self.subscription = subscription
        self.api = api
        self.plan = plan
        self.operations = operations
        self.notAfter = notAfter
        self.state = state
        self.reason = reason
        self.approval = approval
        self.approvers = approvers
        self.path = path
        self.requestedIn = requestedIn
    }
}

/// Entitlements derived from an effective state, with the validation that decided them.
public struct EntitlementReport: Sendable {
    /// Every entitlement, sorted by consumer, subscription and state.
    public var entitlements: EntitlementList
    /// The effective state's validation: the marketplace model and its diagnostics.
    public var validation: ValidationReport
    /// The state they were derived from.
    public var state: EffectiveState

    /// The entitlements in one state.
    public func entitlements(_ state: Entitlement.State) -> [Entitlement] {
        entitlements.filter { $0.state == state }
    }
}

/// Entitlements as derived at one revision, with what it takes to update them
/// when only a few subscriptions change: kept between runs, so a run after one
/// new commit does not validate the whole marketplace again.
public struct DerivedEntitlements: Sendable, Hashable {
    /// The effective state's revision they were derived at.
    public var revision: String
    /// The date expiry was judged by, `YYYY-MM-DD`.
    public var today: String
    /// The platform's verification mode (`none` when there is no valid platform).
    public var verification: String
    /// Every entitlement, sorted by consumer, subscription and state.
    public var entitlements: EntitlementList
    /// The first error of each file that has one, rules that span manifests included.
    public var firstErrors: [String: Diagnostic]
    /// Every API id in the catalog, sorted: subscriptions naming another one are told the closest.
    public var apiIDs: [String]

    /// How many entitlements are in each state (every state, zero included).
    public var counts: [Entitlement.State: Int] { entitlements.counts }

    /// Keeps what a full derivation found.
    public init(_ report: EntitlementReport, today: String) {
        revision = report.state.revision
        self.today = today
        verification = report.validation.marketplace.platform?.verification.rawValue ?? Platform.Verification.none.rawValue
        entitlements = report.entitlements
        firstErrors = EntitlementDerivation.firstErrors(report.validation.diagnostics)
        apiIDs = report.validation.marketplace.apis.keys.sorted()
    }

    /// Restores a kept derivation.
    public init(
        revision: String, today: String, verification: String, entitlements: [Entitlement],
        firstErrors: [String: Diagnostic], apiIDs: [String]
    ) {
        self.revision = revision
        self.today = today
        self.verification = verification
        self.entitlements = EntitlementList(entitlements)
        self.firstErrors = firstErrors
        self.apiIDs = apiIDs
    }
}

/// Derives entitlements from an effective state: a pure function of its inputs.
public enum EntitlementDerivation {
    /// - Parameters:
    ///   - state: the effective state, as history replay left it.
    ///   - today: the date to judge expiry by, `YYYY-MM-DD` (UTC).
    public static func derive(_ state: EffectiveState, today: String) -> EntitlementReport {
        let validation = MarketplaceValidator().validate(state.sourceFiles)
        let entitlements = entitlements(
            of: validation.marketplace, errors: firstErrors(validation.diagnostics),
            state: state, pending: state.refused.values, today: today)
        return EntitlementReport(entitlements: EntitlementList(entitlements), validation: validation, state: state)
    }

    /// Brings a kept derivation up to `state`, when the only paths that changed
    /// since (`touched`: applied or refused) are subscriptions: their consumers'
    /// subscriptions are validated again with the APIs they name, and every
    /// other entitlement stays as it was, its expiry judged again by `today`.
    /// Returns `nil` when something else changed (a policy, the catalog, a
    /// consumer's registration), which can reach any entitlement: then `derive`.
    ///
    /// `contents`, when given, lists the paths of a folder of `state` (`policies`,
    /// `catalog/cbse`): without it, one pass over every path of the state finds them.
    public static func update(
        _ previous: consuming DerivedEntitlements, to state: EffectiveState, touched: Set<String>,
        today: String, contents: ((String) -> Set<String>)? = nil
    ) -> DerivedEntitlements? {
        var consumers = Set<String>()
        for path in touched {
            guard let consumer = MarketplacePath.subscriptionConsumer(path) else { return nil }
            consumers.insert(consumer)
        }
        // Past the repository's size limits, validation stops reading files part way: only a full one knows where.
        guard !previous.firstErrors.values.contains(where: { $0.rule.family == .repo }) else { return nil }
        let previousToday = previous.today
        var derived = consume previous
        // Asked of every path in the state: a slice and a set lookup, no splitting.
        func folder(_ path: String) -> Substring {
            let utf8 = path.utf8
            let slash =
                utf8.withContiguousStorageIfAvailable { $0.lastIndex(of: UInt8(ascii: "/")) }
                ?? utf8.lastIndex(of: UInt8(ascii: "/")).map { utf8.distance(from: utf8.startIndex, to: $0) }
            guard let slash else { return "" }
            return path[..<utf8.index(utf8.startIndex, offsetBy: slash)]
        }
        let consumerFolders = Set(consumers.map { Substring("subscriptions/\($0)") })
        func isAffected(_ path: String) -> Bool { consumerFolders.contains(folder(path)) }
        var fresh: [Entitlement] = []
        if !consumers.isEmpty {
            // The affected consumers' folders, and the folders of the publishers their subscriptions
            // name; the policies too: without the plans and the platform, the publisher's APIs would
            // draw diagnostics (and a search for each one's line) that are thrown away. One pass
            // over the state's paths, which at tens of thousands is most of this update's time.
            var paths: [String] = []
            var catalog: [Substring: [String]] = [:]
            if let contents {
                paths = Array(contents("policies"))
                for folder in consumerFolders { paths += contents(String(folder)) }
            } else {
                for path in state.files.keys {
                    let folder = folder(path)
                    if folder.utf8.starts(with: "catalog/".utf8) {
                        catalog[folder, default: []].append(path)
                    } else if consumerFolders.contains(folder) || folder == "policies" {
                        paths.append(path)
                    }
                }
            }
            var publisherFolders = Set<Substring>()
            for path in paths {
                for subscription in state.files[path]!.file.subscriptions {
                    if let publisher = subscription.api.split(separator: "/").first { publisherFolders.insert("catalog/\(publisher)") }
                }
            }
            for folder in publisherFolders { paths += contents.map { Array($0(String(folder))) } ?? catalog[folder] ?? [] }
            let validation = MarketplaceValidator().validate(
                paths.sorted().map { SourceFile(path: $0, content: .prepared(state.files[$0]!.file)) }, knownAPIs: derived.apiIDs)
            var errors = derived.firstErrors.filter { !(isAffected($0.key) && MarketplacePath.isSubscription($0.key)) }
            for (path, diagnostic) in firstErrors(validation.diagnostics) where isAffected(path) && MarketplacePath.isSubscription(path) {
                errors[path] = diagnostic
            }
            derived.firstErrors = errors
            // A change not in force stays as it was unless its path was touched: the affected
            // consumers' pending entitlements are the ones they had and the touched paths' now.
            var pending = Set(touched.filter(isAffected))
            for consumer in consumers {
                for entitlement in derived.entitlements.entitlements(of: consumer) where entitlement.state == .pending {
                    pending.insert(entitlement.path)
                }
            }
            fresh = Self.entitlements(
                of: validation.marketplace, errors: errors, state: state,
                pending: pending.compactMap { state.refused[$0] }.filter { isAffected($0.path) }, today: today)
        }
        derived.revision = state.revision
        derived.today = today
        // The rest stay as they are, and keep their order unless a new day moved one
        // between active and expired.
        if !consumers.isEmpty {
            var freshOf: [String: [Entitlement]] = [:]
            for entitlement in fresh { freshOf[entitlement.consumer, default: []].append(entitlement) }
            for consumer in Set(freshOf.keys).union(consumers).sorted() {
                let kept = derived.entitlements.entitlements(of: consumer).filter { !isAffected($0.path) }
                derived.entitlements.replace(entitlementsOf: consumer, with: kept + (freshOf[consumer] ?? []))
            }
        }
        if today != previousToday {
            derived.entitlements.updateEach { judgeExpiry(&$0, today: today) }
        }
        return derived
    }

    /// The first error of each file, by the diagnostics' order.
    public static func firstErrors(_ diagnostics: [Diagnostic]) -> [String: Diagnostic] {
        var errors: [String: Diagnostic] = [:]
        for diagnostic in diagnostics where diagnostic.severity == .error && errors[diagnostic.file] == nil {
            errors[diagnostic.file] = diagnostic
        }
        return errors
    }

    /// The entitlements of a marketplace's subscriptions and of the pending changes among `pending`, unsorted.
    private static func entitlements(
        of marketplace: Marketplace, errors: [String: Diagnostic], state: EffectiveState,
        pending: some Sequence<RefusedChange>, today: String
    ) -> [Entitlement] {
        var entitlements: [Entitlement] = []
        for subscription in marketplace.subscriptions.values {
            let path = subscription.origin.file
            var entitlement = Entitlement(
                consumer: subscription.consumer, subscription: subscription.name, api: subscription.api,
                plan: subscription.plan, operations: subscription.operations, notAfter: subscription.notAfter,
                state: .active, reason: nil, approval: state.files[path]?.approval, approvers: [], path: path, requestedIn: nil)
            if let problem = invalidity(of: subscription, marketplace: marketplace, errors: errors, path: path) {
                entitlement.state = .invalid
                entitlement.reason = problem
            } else {
                judgeExpiry(&entitlement, today: today)
            }
            entitlements.append(entitlement)
        }
        for refused in pending where refused.reason == .pendingApproval {
            guard let pending = refused.pending?.subscriptions.first else { continue }
            entitlements.append(
                Entitlement(
                    consumer: pending.consumer, subscription: pending.name, api: pending.api, plan: pending.plan,
                    operations: pending.operations, notAfter: pending.notAfter, state: .pending, reason: refused.message,
                    approval: nil, approvers: refused.needs, path: refused.path, requestedIn: refused.commit))
        }
        return entitlements
    }

    /// An entitlement in force is active until its `notAfter` day has passed, then expired.
    private static func judgeExpiry(_ entitlement: inout Entitlement, today: String) {
        guard entitlement.state == .active || entitlement.state == .expired else { return }
        if let end = entitlement.notAfter, end < today {
            entitlement.state = .expired
            entitlement.reason = "expired on \(end)"
        } else {
            entitlement.state = .active
            entitlement.reason = nil
        }
    }

    private static func invalidity(
        of subscription: Subscription, marketplace: Marketplace,
        errors: [String: Diagnostic], path: String
    ) -> String? {
        if let diagnostic = errors[path] {
            return DiagnosticFormatter.sentence(diagnostic)
        }
        guard let consumer = marketplace.consumers[subscription.consumer] else {
            return "consumer \(subscription.consumer) is not registered"
        }
        if let diagnostic = errors[consumer.origin.file] {
            return "consumer \(consumer.name) is invalid: \(DiagnosticFormatter.sentence(diagnostic))"
        }
        guard let api = marketplace.apis[subscription.api] else {
            return "API \(subscription.api) is not in the catalog"
        }
        if let diagnostic = errors[api.origin.file] {
            return "API \(api.id) is invalid: \(DiagnosticFormatter.sentence(diagnostic))"
        }
        if marketplace.publishers[api.publisher]?.category == .listing {
            return "\(api.id) is a listing API"
        }
        if !api.plans.contains(subscription.plan) {
            return "\(api.id) does not offer plan \(subscription.plan)"
        }
        return nil
    }
}
