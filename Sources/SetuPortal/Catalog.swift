import Foundation
import SetuManifest

/// One API as the catalog lists it: `setu catalog --format json` and the portal's
/// `/-/catalog.json` are lists of these, from the same marketplace in force.
public struct CatalogEntry: Codable, Sendable, Equatable {
    public var id: String
    public var publisher: String
    public var publisherName: String
    public var type: String
    public var title: String
    public var summary: String
    public var version: String
    public var basePath: String?
    public var plans: [String]
    public var tags: [String]
    public var consent: String
    public var operations: Int

    /// What a catalog can be narrowed to; each filter left empty admits everything.
    public struct Filter: Sendable, Equatable {
        /// Text in the id, title, summary, publisher's name or tags.
        public var search: String?
        public var type: Publisher.Category?
        public var publisher: String?
        public var tag: String?
        /// `required`, `optional` or `none`.
        public var consent: String?

        public init(search: String? = nil, type: Publisher.Category? = nil, publisher: String? = nil, tag: String? = nil, consent: String? = nil) {
            self.search = search
            self.type = type
            self.publisher = publisher
            self.tag = tag
            self.consent = consent
        }
    }

    /// The APIs of `marketplace` that pass `filter`, by id.
    public static func list(_ marketplace: Marketplace, filter: Filter = Filter()) -> [CatalogEntry] {
        let needle = filter.search?.lowercased().trimmingCharacters(in: .whitespaces)
        return marketplace.apis.values.sorted { $0.id < $1.id }.compactMap { api in
            let publisher = marketplace.publishers[api.publisher]
            let category = publisher?.category ?? .service
            if let type = filter.type, category != type { return nil }
            if let wanted = filter.publisher, api.publisher != wanted { return nil }
            if let tag = filter.tag?.lowercased(), !api.tags.contains(where: { $0.lowercased() == tag }) { return nil }
            let consent = api.consent(for: category).rawValue
            if let wanted = filter.consent, consent != wanted { return nil }
            if let needle, !needle.isEmpty {
                let haystack = ([api.id, api.title, api.summary, publisher?.displayName ?? ""] + api.tags).joined(separator: " ").lowercased()
                if !haystack.contains(needle) { return nil }
            }
            return CatalogEntry(
                id: api.id, publisher: api.publisher, publisherName: publisher?.displayName ?? api.publisher,
                type: category.rawValue, title: api.title, summary: api.summary, version: api.version,
                basePath: api.basePath, plans: api.plans, tags: api.tags, consent: consent, operations: api.operations.count)
        }
    }

    /// The list as JSON, as `setu catalog --format json` prints it and `/-/catalog.json` serves it:
    /// pretty, keys sorted, slashes as they are, and a newline at the end.
    public static func json(_ entries: [CatalogEntry]) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(entries)) ?? Data("[]".utf8)) + [0x0A]
    }

    /// The Subscription manifest a consumer commits to ask for `api`.
    public static func subscriptionYAML(for api: API, in marketplace: Marketplace) -> String {
        var text = """
            # yaml-language-server: $schema=../../schemas/subscription.schema.json
            apiVersion: setu/v1
            kind: Subscription
            metadata:
              name: \(api.publisher)-\(api.name)
            spec:
              api: \(api.id)
              plan: \(api.plans.first ?? "standard")
            """
        if marketplace.publishers[api.publisher]?.category == .document {
            text += "\n  purpose: \(YAMLText.scalar("Why you need this API, for the publisher's approvers."))"
        }
        if let first = api.operations.first?.operationId {
            text += "\n  # operations: [\(first)]   # optional: only these operations"
        }
        return text + "\n"
    }

    /// Where the manifest goes, under the consumer's folder.
    public static func subscriptionPath(for api: API) -> String {
        "subscriptions/<your-consumer>/\(api.publisher)-\(api.name).yaml"
    }

    /// The git commands that open the request on a branch.
    public static func gitCommands(for api: API) -> String {
        let branch = "subscribe-\(api.publisher)-\(api.name)"
        let path = subscriptionPath(for: api)
        return """
            git switch -c \(branch)
            mkdir -p subscriptions/<your-consumer>
            # save the Subscription above as \(path)
            git add \(path)
            git commit -m "Subscribe to \(api.id)"
            git push -u origin \(branch)
            """
    }

    /// How to subscribe, as `setu catalog show` says it: where the file goes, whom to ask, and the file.
    public static func subscribing(to api: API, in marketplace: Marketplace) -> String {
        let approvers = marketplace.publishers[api.publisher]?.approvers.map(\.email).joined(separator: ", ") ?? ""
        return """
            To subscribe, commit this file as \(subscriptionPath(for: api)) on a branch,
            and ask an approver of \(api.publisher)\(approvers.isEmpty ? "" : " (\(approvers))") to merge it:

            """ + "\n" + subscriptionYAML(for: api, in: marketplace)
    }
}
