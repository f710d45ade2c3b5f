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
}

/// Entitlements derived from an effective state, with the validation that decided them.
public struct EntitlementReport: Sendable {
    /// Every entitlement, sorted by consumer, subscription and state.
    public var entitlements: [Entitlement]
    /// The effective state's validation: the marketplace model and its diagnostics.
    public var validation: ValidationReport
    /// The state they were derived from.
    public var state: EffectiveState

    /// The entitlements in one state.
    public func entitlements(_ state: Entitlement.State) -> [Entitlement] {
        entitlements.filter { $0.state == state }
    }
}

/// Derives entitlements from an effective state: a pure function of its inputs.
public enum EntitlementDerivation {
    /// - Parameters:
    ///   - state: the effective state, as history replay left it.
    ///   - today: the date to judge expiry by, `YYYY-MM-DD` (UTC).
    public static func derive(_ state: EffectiveState, today: String) -> EntitlementReport {
        let validation = MarketplaceValidator().validate(state.sourceFiles)
        let marketplace = validation.marketplace
        var errorsByFile: [String: Diagnostic] = [:]
        for diagnostic in validation.diagnostics where diagnostic.severity == .error && errorsByFile[diagnostic.file] == nil {
            errorsByFile[diagnostic.file] = diagnostic
        }
        var entitlements: [Entitlement] = []
        for subscription in marketplace.subscriptions.values {
            let path = subscription.origin.file
            var entitlement = Entitlement(
                consumer: subscription.consumer, subscription: subscription.name, api: subscription.api,
                plan: subscription.plan, operations: subscription.operations, notAfter: subscription.notAfter,
                state: .active, reason: nil, approval: state.files[path]?.approval, approvers: [], path: path, requestedIn: nil)
            if let problem = invalidity(of: subscription, marketplace: marketplace, errors: errorsByFile, path: path) {
                entitlement.state = .invalid
                entitlement.reason = problem
            } else if let end = subscription.notAfter, end < today {
                entitlement.state = .expired
                entitlement.reason = "expired on \(end)"
            }
            entitlements.append(entitlement)
        }
        for refused in state.refused.values where refused.reason == .pendingApproval {
            guard let pending = refused.pending?.subscriptions.first else { continue }
            entitlements.append(Entitlement(
                consumer: pending.consumer, subscription: pending.name, api: pending.api, plan: pending.plan,
                operations: pending.operations, notAfter: pending.notAfter, state: .pending, reason: refused.message,
                approval: nil, approvers: refused.needs, path: refused.path, requestedIn: refused.commit))
        }
        entitlements.sort { a, b in
            if a.consumer != b.consumer { return a.consumer < b.consumer }
            if a.subscription != b.subscription { return a.subscription < b.subscription }
            return a.state.rawValue < b.state.rawValue
        }
        return EntitlementReport(entitlements: entitlements, validation: validation, state: state)
    }

    private static func invalidity(of subscription: Subscription, marketplace: Marketplace,
                                   errors: [String: Diagnostic], path: String) -> String? {
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
