import Foundation

/// The kinds of manifest a marketplace repository holds.
public enum ManifestKind: String, Sendable, CaseIterable, Codable {
    case platform = "Platform"
    case plan = "Plan"
    case consentProvider = "ConsentProvider"
    case alertRule = "AlertRule"
    case publisher = "Publisher"
    case api = "API"
    case consumer = "Consumer"
    case subscription = "Subscription"

    /// The file name of this kind's JSON Schema, as `setu schema` exports it.
    public var schemaFile: String {
        switch self {
        case .platform: return "platform.schema.json"
        case .plan: return "plan.schema.json"
        case .consentProvider: return "consent-provider.schema.json"
        case .alertRule: return "alert-rule.schema.json"
        case .publisher: return "publisher.schema.json"
        case .api: return "api.schema.json"
        case .consumer: return "consumer.schema.json"
        case .subscription: return "subscription.schema.json"
        }
    }
}

/// Setu's JSON Schemas, embedded in the binary, compiled once.
public struct ManifestSchemas: Sendable {
    /// The schema shared by every kind, as `setu schema` exports it.
    public static let commonFile = "common.schema.json"

    /// Every schema file's bytes, by file name: what `setu schema` writes.
    public static let files: [String: [UInt8]] = [
        "common.schema.json": PackageResources.common_schema_json,
        "platform.schema.json": PackageResources.platform_schema_json,
        "plan.schema.json": PackageResources.plan_schema_json,
        "consent-provider.schema.json": PackageResources.consent_provider_schema_json,
        "alert-rule.schema.json": PackageResources.alert_rule_schema_json,
        "publisher.schema.json": PackageResources.publisher_schema_json,
        "api.schema.json": PackageResources.api_schema_json,
        "consumer.schema.json": PackageResources.consumer_schema_json,
        "subscription.schema.json": PackageResources.subscription_schema_json,
    ]

    /// The compiled schemas, loaded on first use.
    public static let shared: ManifestSchemas = {
        do {
            return try ManifestSchemas()
        } catch {
            // The schemas are part of the binary and tested; failing here is a build defect.
            preconditionFailure("Setu's embedded schemas do not compile: \(error)")
        }
    }()

    private let byKind: [ManifestKind: JSONSchema]

    /// Compiles the embedded schemas.
    public init() throws {
        let base = "file:///setu/schemas/"
        var documents: [String: JSONValue] = [:]
        for (name, bytes) in Self.files {
            documents[base + name] = try JSONValue(json: Data(bytes))
        }
        let schemas = try JSONSchema.compile(documents)
        var compiled: [ManifestKind: JSONSchema] = [:]
        for kind in ManifestKind.allCases {
            compiled[kind] = schemas[base + kind.schemaFile]
        }
        byKind = compiled
    }

    /// The schema for one kind.
    public func schema(for kind: ManifestKind) -> JSONSchema {
        byKind[kind]!
    }
}
