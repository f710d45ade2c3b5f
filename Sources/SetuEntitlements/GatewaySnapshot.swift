import SetuManifest

/// Everything the gateway needs to serve one revision, as one immutable value:
/// built once per reconcile and swapped in whole, so no request sees half of two
/// revisions.
public struct GatewaySnapshot: Sendable {
    /// An API the gateway proxies, found by its base path.
    public struct Route: Sendable, Hashable {
        public var api: String
        public var publisher: String
        public var category: Publisher.Category
        public var basePath: String
        public var upstreamURL: String
        /// The upstream timeout in milliseconds.
        public var timeoutMilliseconds: Int
        public var consent: API.Consent
        public var operations: [APIOperation]
        /// How requests are checked against the OpenAPI document.
        public var validation: API.Validation
        /// The OpenAPI document in JSON Schema form, which the operations' schemas point into.
        public var schemaDocument: JSONValue?

        public init(
            api: String, publisher: String, category: Publisher.Category, basePath: String, upstreamURL: String,
            timeoutMilliseconds: Int, consent: API.Consent, operations: [APIOperation],
            validation: API.Validation = .enforce, schemaDocument: JSONValue? = nil
        ) {
            self.validation = validation
            self.schemaDocument = schemaDocument
            self.api = api
            self.publisher = publisher
            self.category = category
            self.basePath = basePath
            self.upstreamURL = upstreamURL
            self.timeoutMilliseconds = timeoutMilliseconds
            self.consent = consent
            self.operations = operations
        }
    }

    /// A client id the gateway accepts, and whose it is.
    public struct Credential: Sendable, Hashable {
        public var clientId: String
        public var consumer: String
        public var keySHA256: String
        public var notBefore: String?
        public var notAfter: String?

        public init(clientId: String, consumer: String, keySHA256: String, notBefore: String?, notAfter: String?) {
            self.clientId = clientId
            self.consumer = consumer
            self.keySHA256 = keySHA256
            self.notBefore = notBefore
            self.notAfter = notAfter
        }
    }

    /// The commit the snapshot was built from.
    public var revision: String
    /// Proxied APIs by base path; listing APIs are not routes.
    public var routes: [String: Route]
    /// Credentials by client id: several when a consumer rotates a key under one client id.
    public var credentials: [String: [Credential]]
    /// Active entitlements by consumer, then API id.
    public var entitlements: [String: [String: Entitlement]]
    /// Every entitlement that is not active, for explaining refusals.
    public var inactive: [String: [String: Entitlement]]
    /// Plans by name.
    public var plans: [String: Plan]
    /// Consent providers by name.
    public var consentProviders: [String: ConsentProvider]
    /// The consent provider of an authorized partner, and the client id it issued them.
    public struct Partner: Sendable, Hashable {
        public var provider: String
        public var clientId: String
    }

    /// Authorized partners by consumer.
    public var partners: [String: Partner]

    /// An API listed for information only, which the gateway never proxies.
    public struct Listing: Sendable, Hashable {
        public var api: String
        public var title: String
        /// Where its data is published, when the manifest says.
        public var url: String?
    }

    /// Listing APIs by API id, so a call to one is refused with a reason rather than "not found".
    public var listings: [String: Listing]
    /// Alert rules by name: the daemon evaluates them on the live hits.
    public var alertRules: [String: AlertRule] = [:]
    /// The marketplace in force, APIs with errors left out, as the portal shows it.
    public var marketplace = Marketplace()

    /// Names everything but the entitlements (routes, credentials, plans, consent providers,
    /// partners, listings): a snapshot made from another by `replacingEntitlements` keeps it,
    /// so what was compiled from them can be kept too.
    public private(set) var catalogID = UInt64.random(in: 1...UInt64.max)
    /// Names the entitlements.
    public private(set) var entitlementsID = UInt64.random(in: 1...UInt64.max)
    /// For a snapshot made by `replacingEntitlements`: the `entitlementsID` it was made from,
    /// and the consumers whose entitlements may differ from it.
    public private(set) var changedFrom: (entitlementsID: UInt64, consumers: Set<String>)?

    /// A snapshot from its parts.
    public init(
        revision: String, routes: [String: Route], credentials: [String: [Credential]],
        entitlements: [String: [String: Entitlement]], inactive: [String: [String: Entitlement]],
        plans: [String: Plan], consentProviders: [String: ConsentProvider], partners: [String: Partner],
        listings: [String: Listing]
    ) {
        self.revision = revision
        self.routes = routes
        self.credentials = credentials
        self.entitlements = entitlements
        self.inactive = inactive
        self.plans = plans
        self.consentProviders = consentProviders
        self.partners = partners
        self.listings = listings
    }

    /// Builds the snapshot from entitlements derived for a revision. Manifests with
    /// errors serve nothing: an invalid API has no route and an invalid consumer no credentials.
    public init(_ report: EntitlementReport) {
        let marketplace = report.validation.marketplace
        let broken = Set(report.validation.diagnostics.filter { $0.severity == .error }.map(\.file))
        revision = report.state.revision
        var routes: [String: Route] = [:]
        var listings: [String: Listing] = [:]
        for api in marketplace.apis.values where !broken.contains(api.origin.file) {
            if marketplace.publishers[api.publisher]?.category == .listing || api.listingURL != nil {
                listings[api.id] = Listing(api: api.id, title: api.title, url: api.listingURL)
            }
            guard let basePath = api.basePath, let upstream = api.upstreamURL,
                let category = marketplace.publishers[api.publisher]?.category, category != .listing
            else { continue }
            routes[basePath] = Route(
                api: api.id, publisher: api.publisher, category: category, basePath: basePath,
                upstreamURL: upstream, timeoutMilliseconds: api.upstreamTimeout.flatMap(ManifestDuration.milliseconds) ?? 30_000,
                consent: api.consent(for: category), operations: api.operations,
                validation: api.validation, schemaDocument: api.schemaDocument)
        }
        self.routes = routes
        self.listings = listings
        var credentials: [String: [Credential]] = [:]
        var partners: [String: Partner] = [:]
        for consumer in marketplace.consumers.values where !broken.contains(consumer.origin.file) {
            for credential in consumer.credentials {
                credentials[credential.clientId, default: []].append(
                    Credential(
                        clientId: credential.clientId, consumer: consumer.name, keySHA256: credential.keySHA256,
                        notBefore: credential.notBefore, notAfter: credential.notAfter))
            }
            if let provider = consumer.partnerProvider, let clientId = consumer.partnerClientId {
                partners[consumer.name] = Partner(provider: provider, clientId: clientId)
            }
        }
        self.credentials = credentials
        self.partners = partners
        entitlements = [:]
        inactive = [:]
        plans = marketplace.plans
        consentProviders = marketplace.consentProviders
        alertRules = marketplace.alertRules.filter { !broken.contains($0.value.origin.file) }
        self.marketplace = marketplace
        self.marketplace.apis = marketplace.apis.filter { !broken.contains($0.value.origin.file) }
        for entitlement in report.entitlements { take(entitlement) }
    }

    /// Files an entitlement as active, or, when the consumer has no active one for the API, inactive.
    private mutating func take(_ entitlement: Entitlement) {
        if entitlement.state == .active {
            entitlements[entitlement.consumer, default: [:]][entitlement.api] = entitlement
        } else if entitlements[entitlement.consumer]?[entitlement.api] == nil {
            inactive[entitlement.consumer, default: [:]][entitlement.api] = entitlement
        }
    }

    /// The snapshot at `revision` with the entitlements of `consumers` (every consumer's
    /// when nil) taken again from `all`. Everything else is kept as it is, with its `catalogID`.
    public func replacingEntitlements(of consumers: Set<String>?, from all: EntitlementList, revision: String) -> GatewaySnapshot {
        var next = self
        next.revision = revision
        next.entitlementsID = UInt64.random(in: 1...UInt64.max)
        guard let consumers else {
            next.entitlements = [:]
            next.inactive = [:]
            for entitlement in all { next.take(entitlement) }
            next.changedFrom = nil
            return next
        }
        for consumer in consumers {
            next.entitlements[consumer] = nil
            next.inactive[consumer] = nil
            for entitlement in all.entitlements(of: consumer) { next.take(entitlement) }
        }
        next.changedFrom = (entitlementsID, consumers)
        return next
    }
}
