/// A rule's stable id, as diagnostics, reports and refusals print it: `ref.plan`,
/// `schema.type`. Its family (the part before the dot) says what kind of rule it is;
/// code that treats families differently asks `family`, never the text.
public struct RuleID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// For tests and tools that name a rule by its id; the sources use the constants below.
    public init(stringLiteral value: String) {
        rawValue = value
    }

    public init(from decoder: Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    public static func < (lhs: RuleID, rhs: RuleID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The kinds of rule.
    public enum Family: String, Sendable {
        case api
        case consumer
        case credential
        case date
        case file
        case manifest
        case name
        case openapi
        case platform
        case ref
        case repo
        case schema
        case subscription
        case trust
        case upstream
        case yaml
    }

    /// The rule's family; nil for an id outside them (a schema's own `x-setu-rule`).
    public var family: Family? { Family(rawValue: String(rawValue.prefix { $0 != "." })) }

    /// The schema rule of a JSON Schema keyword: `schema.type`, `schema.unknown-field`.
    public static func schema(_ keyword: String) -> RuleID { RuleID(rawValue: "schema." + kebab(keyword)) }

    public static let apiBasePath = RuleID(rawValue: "api.base-path")
    public static let apiListing = RuleID(rawValue: "api.listing")
    public static let apiPlans = RuleID(rawValue: "api.plans")
    public static let apiUpstream = RuleID(rawValue: "api.upstream")
    public static let consumerPartner = RuleID(rawValue: "consumer.partner")
    public static let credentialClientId = RuleID(rawValue: "credential.client-id")
    public static let credentialDates = RuleID(rawValue: "credential.dates")
    public static let credentialExpired = RuleID(rawValue: "credential.expired")
    public static let credentialHash = RuleID(rawValue: "credential.hash")
    public static let dateCalendar = RuleID(rawValue: "date.calendar")
    public static let fileLocation = RuleID(rawValue: "file.location")
    public static let fileSubmodule = RuleID(rawValue: "file.submodule")
    public static let fileSymlink = RuleID(rawValue: "file.symlink")
    public static let fileTooLarge = RuleID(rawValue: "file.too-large")
    public static let fileUnreadable = RuleID(rawValue: "file.unreadable")
    public static let manifestEmpty = RuleID(rawValue: "manifest.empty")
    public static let manifestKind = RuleID(rawValue: "manifest.kind")
    public static let manifestLocation = RuleID(rawValue: "manifest.location")
    public static let manifestSingleDocument = RuleID(rawValue: "manifest.single-document")
    public static let namePath = RuleID(rawValue: "name.path")
    public static let nameUnique = RuleID(rawValue: "name.unique")
    public static let openapiMissing = RuleID(rawValue: "openapi.missing")
    public static let openapiOperationId = RuleID(rawValue: "openapi.operation-id")
    public static let openapiParse = RuleID(rawValue: "openapi.parse")
    public static let openapiPath = RuleID(rawValue: "openapi.path")
    public static let openapiUnreferenced = RuleID(rawValue: "openapi.unreferenced")
    public static let platformMissing = RuleID(rawValue: "platform.missing")
    public static let refApi = RuleID(rawValue: "ref.api")
    public static let refConsentProvider = RuleID(rawValue: "ref.consent-provider")
    public static let refConsumer = RuleID(rawValue: "ref.consumer")
    public static let refOperation = RuleID(rawValue: "ref.operation")
    public static let refPlan = RuleID(rawValue: "ref.plan")
    public static let refPublisher = RuleID(rawValue: "ref.publisher")
    public static let repoTooLarge = RuleID(rawValue: "repo.too-large")
    public static let schemaType = RuleID(rawValue: "schema.type")
    public static let subscriptionConsumerType = RuleID(rawValue: "subscription.consumer-type")
    public static let subscriptionListing = RuleID(rawValue: "subscription.listing")
    public static let subscriptionPurpose = RuleID(rawValue: "subscription.purpose")
    public static let trustApproval = RuleID(rawValue: "trust.approval")
    public static let trustOwner = RuleID(rawValue: "trust.owner")
    public static let upstreamAddress = RuleID(rawValue: "upstream.address")
    public static let upstreamAllowList = RuleID(rawValue: "upstream.allow-list")
    public static let upstreamScheme = RuleID(rawValue: "upstream.scheme")
    public static let upstreamUrl = RuleID(rawValue: "upstream.url")
    public static let yamlAliases = RuleID(rawValue: "yaml.aliases")
    public static let yamlDepth = RuleID(rawValue: "yaml.depth")
    public static let yamlDuplicateKey = RuleID(rawValue: "yaml.duplicate-key")
    public static let yamlKey = RuleID(rawValue: "yaml.key")
    public static let yamlSyntax = RuleID(rawValue: "yaml.syntax")
    public static let yamlTag = RuleID(rawValue: "yaml.tag")
    public static let yamlUtf8 = RuleID(rawValue: "yaml.utf8")
}
