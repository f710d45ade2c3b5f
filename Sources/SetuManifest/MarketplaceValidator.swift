import Dispatch
import Foundation
import SetuConcurrency

/// Validates a marketplace: every file's YAML, every manifest against its
/// kind's schema, then the rules that span manifests (DESIGN.md §3).
public struct MarketplaceValidator: Sendable {
    /// Limits applied to every file.
    public var limits: LoadLimits
    /// The day, YYYY-MM-DD, against which `validate` warns of credentials already past their
    /// `notAfter`; nil for no such warning, as history replay wants: its result may not
    /// depend on the day it runs.
    public var today: String?

    /// Creates a validator.
    public init(limits: LoadLimits = .standard, today: String? = nil) {
        self.limits = limits
        self.today = today
    }

    /// The problems of one file on its own: YAML, kind and place, schema, and
    /// name against path; not the rules that look at other manifests. `prepare`
    /// keeps these as a version's `problems`, which history replay decides on.
    public func checkFile(_ file: SourceFile) -> [Diagnostic] {
        var run = ValidationRun(limits: limits, files: [file])
        run.classifyAndLoad()
        run.buildMarketplace()
        return run.report().diagnostics.filter { diagnostic in
            diagnostic.severity == .error && diagnostic.file == file.path
                && ([.file, .yaml, .manifest, .schema].contains { diagnostic.rule.family == $0 }
                    || [.namePath, .nameUnique, .credentialHash].contains(diagnostic.rule))
        }
    }

    /// The rules that span manifests (references, base paths, consumers' types and
    /// credentials, upstreams) over files already read and checked on their own
    /// (`prepare`), using what reading them found: nothing is classified, loaded or
    /// decoded again. History replay asks this of every change that would take effect,
    /// with the few files the change can reach. OpenAPI documents are not read: a caller
    /// whose files need them (a subscription naming operations, an API with a document)
    /// uses `validate`. Only errors are returned.
    /// - Parameters:
    ///   - judging: the files whose rules are wanted (nil: all); a family of rules (APIs,
    ///     consumers, subscriptions) runs only when one of its files is among them, since
    ///     the others were judged when they took effect.
    ///   - checkedUpstreams: APIs (by id) whose upstream was checked before against the
    ///     same platform, and is not checked again.
    public func checkReferences(
        _ files: [PreparedFile], judging: Set<String>? = nil, checkedUpstreams: Set<String> = [],
        knownAPIs: [String]? = nil
    ) -> [Diagnostic] {
        var run = ValidationRun(limits: limits, files: [])
        run.knownAPIs = knownAPIs
        run.checkedUpstreams = checkedUpstreams
        var platforms: [Platform] = []
        for file in files {
            run.bytesByPath[file.path] = file.bytes
            for manifest in file.loaded?.manifests ?? [] {
                switch manifest.entity {
                case .platform(let platform): platforms.append(platform)
                case .plan(let plan): run.marketplace.plans[manifest.name] = plan
                case .consentProvider(let provider): run.marketplace.consentProviders[manifest.name] = provider
                case .alertRule: break
                case .publisher(let publisher): run.marketplace.publishers[publisher.name] = publisher
                case .api(let api, let fields, _):
                    run.apiSpecFields[api.id] = fields
                    run.marketplace.apis[api.id] = api
                case .consumer(let consumer): run.marketplace.consumers[consumer.name] = consumer
                case .subscription(let subscription): run.marketplace.subscriptions[subscription.id] = subscription
                }
            }
        }
        run.marketplace.platform = platforms.first
        func judged(_ origins: some Sequence<ManifestOrigin>) -> Bool {
            judging.map { judging in origins.contains { judging.contains($0.file) } } ?? true
        }
        if judged(run.marketplace.apis.values.lazy.map(\.origin)) { run.checkAPIs() }
        if judged(run.marketplace.consumers.values.lazy.map(\.origin)) { run.checkConsumers() }
        if judged(run.marketplace.subscriptions.values.lazy.map(\.origin)) { run.checkSubscriptions() }
        return run.diagnostics.filter { $0.severity == .error }
    }

    /// Validates the given files, reporting every problem in one pass.
    ///
    /// - Parameter knownAPIs: the API ids to suggest from when a subscription
    ///   names one the catalog does not list; by default, those among `files`.
    ///   A caller validating part of a marketplace passes the whole catalog's.
    public func validate(_ files: [SourceFile], knownAPIs: [String]? = nil) -> ValidationReport {
        var run = ValidationRun(limits: limits, files: files)
        run.knownAPIs = knownAPIs
        run.today = today
        run.checkRepositoryLimits()
        run.classifyAndLoad()
        run.buildMarketplace()
        run.checkRules()
        return run.report()
    }
}
