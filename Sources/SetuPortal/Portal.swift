import Foundation
import SetuManifest
import Synchronization

/// The marketplace portal under `/-/` on the public listener: the catalog with search and
/// facets, publisher pages, API pages rendered from their OpenAPI documents, `catalog.json`
/// and the documents themselves. It is made from the marketplace in force at one revision
/// (the gateway's snapshot), never from the files as written.
public final class Portal: Sendable {
    /// An answer: status, content type and body.
    public struct Answer: Sendable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]
    }

    public let revision: String
    private let marketplace: Marketplace
    /// Pages that do not depend on the query, rendered once each.
    private let rendered = Mutex<[String: Answer]>([:])

    public init(marketplace: Marketplace, revision: String) {
        self.marketplace = marketplace
        self.revision = revision
    }

    /// The answer to a GET of `path` (starting `/-`) with `query`; `host` is the request's
    /// `Host`, for the examples.
    public func answer(path: String, query: String, host: String) -> Answer {
        let parameters = Self.parameters(query)
        if path == "/-" || path == "/-/" { return catalogPage(parameters) }
        if path == "/-/catalog.json" { return catalogJSON(parameters) }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // Kept under the path's one spelling: `/-/publishers//cbse` is the same page, and a
        // client must not be able to grow the cache by spelling it many ways.
        let key = "/" + parts.joined(separator: "/")
        if let cached = rendered.withLock({ $0[key] }) { return cached }
        var answer: Answer
        switch parts.count {
        case 3 where parts[1] == "publishers":
            answer = publisherPage(parts[2])
        case 4 where parts[1] == "apis":
            answer = apiPage(parts[2] + "/" + parts[3], host: host)
        case 4 where parts[1] == "openapi" && parts[3].hasSuffix(".json"):
            answer = openAPI(parts[2] + "/" + parts[3].dropLast(5))
        default:
            answer = missing("There is no page at \(path).")
        }
        // API pages carry the host in their examples: kept only when the answer does not depend on it.
        if answer.status == 200, parts.count >= 2, parts[1] != "apis" { rendered.withLock { $0[key] = answer } }
        return answer
    }

    // MARK: Pages

    private func catalogPage(_ parameters: [String: String]) -> Answer {
        let filter = Self.filter(parameters)
        let all = CatalogEntry.list(marketplace)
        let shown = CatalogEntry.list(marketplace, filter: filter)
        func facet(_ name: String, _ label: String, _ values: [(value: String, label: String)], selected: String?) -> [String: Any] {
            [
                "name": name, "label": label, "any": selected == nil,
                "options": values.map { value, label in
                    Pages.present([
                        "value": value, "label": label, "selected": value == selected ? true : nil,
                        "count": all.filter { entry in Self.value(of: entry, facet: name).contains(value) }.count,
                    ])
                },
            ]
        }
        let publishers = Set(all.map(\.publisher)).sorted().map { name in
            (name, marketplace.publishers[name]?.displayName ?? name)
        }
        let tags = Set(all.flatMap(\.tags)).sorted().map { ($0, $0) }
        let context = Pages.present([
            "revision": String(revision.prefix(12)),
            "search": filter.search,
            "total": all.count, "shownCount": shown.count, "plural": shown.count == 1 ? nil : true,
            "facets": [
                facet("publisher", "Publisher", publishers, selected: filter.publisher),
                facet(
                    "type", "Publisher type", [("document", "Document"), ("service", "Service"), ("listing", "Listing")],
                    selected: filter.type?.rawValue),
                facet("tag", "Tag", tags, selected: filter.tag),
                facet(
                    "consent", "Consent", [("required", "Required"), ("optional", "Optional"), ("none", "Not needed")],
                    selected: filter.consent),
            ],
            "results": shown.map { entry in
                Pages.present([
                    "id": entry.id, "title": entry.title, "summary": entry.summary, "publisher": entry.publisher,
                    "publisherName": entry.publisherName, "type": entry.type, "operations": entry.operations,
                    "consentRequired": entry.consent == "required" ? true : nil, "tags": entry.tags.isEmpty ? nil : entry.tags.joined(separator: ", "),
                    "listing": entry.type == "listing" ? true : nil,
                ])
            },
            "hasResults": shown.isEmpty ? nil : true,
        ])
        return html(Pages.render("catalog", context))
    }

    private func catalogJSON(_ parameters: [String: String]) -> Answer {
        Answer(status: 200, contentType: "application/json", body: CatalogEntry.json(CatalogEntry.list(marketplace, filter: Self.filter(parameters))))
    }

    private func publisherPage(_ name: String) -> Answer {
        guard let publisher = marketplace.publishers[name] else { return missing("There is no publisher \(name).") }
        let apis = CatalogEntry.list(marketplace, filter: .init(publisher: name))
        let context = Pages.present([
            "name": publisher.name, "displayName": publisher.displayName, "type": publisher.category.rawValue,
            "description": publisher.description, "contact": publisher.contactEmail,
            "approvers": publisher.approvers.isEmpty ? nil : publisher.approvers.map(\.email).joined(separator: ", "),
            "apis": apis.map { ["id": $0.id, "title": $0.title, "summary": $0.summary] }, "hasApis": apis.isEmpty ? nil : true,
        ])
        return html(Pages.render("publisher", context))
    }

    private func apiPage(_ id: String, host: String) -> Answer {
        guard let api = marketplace.apis[id] else { return missing("There is no API \(id) in force.") }
        let publisher = marketplace.publishers[api.publisher]
        let category = publisher?.category ?? .service
        let consent = api.consent(for: category)
        let plans = api.plans.map { name -> [String: Any] in
            guard let plan = marketplace.plans[name] else { return ["name": name, "limits": "not in force"] }
            var limits = "\(plan.requests) requests per \(plan.per.rawValue)"
            if let burst = plan.burst { limits += ", bursts of \(burst)" }
            if let quota = plan.quota { limits += "; a quota of \(quota.requests) per \(quota.per.rawValue)" }
            return ["name": name, "displayName": plan.displayName, "limits": limits]
        }
        let operations = OperationPage.all(of: api)
        let listing = category == .listing || api.listingURL != nil
        let context = Pages.present([
            "id": api.id, "title": api.title, "summary": api.summary, "description": api.description, "version": api.version,
            "publisher": api.publisher, "publisherName": publisher?.displayName ?? api.publisher, "type": category.rawValue,
            "basePath": api.basePath, "consent": consent.rawValue, "consentRequired": consent == .required ? true : nil,
            "tags": api.tags.isEmpty ? nil : api.tags.joined(separator: ", "),
            "listing": listing ? true : nil, "listingURL": api.listingURL,
            "plans": plans, "hasPlans": plans.isEmpty || listing ? nil : true,
            "operations": operations.map(\.context), "hasOperations": operations.isEmpty ? nil : true,
            "openapi": api.schemaDocument == nil ? nil : "/-/openapi/\(api.id).json",
            "subscription": listing ? nil : CatalogEntry.subscriptionYAML(for: api, in: marketplace),
            "subscriptionPath": CatalogEntry.subscriptionPath(for: api),
            "git": CatalogEntry.gitCommands(for: api),
            "approvers": publisher?.approvers.map(\.email).joined(separator: ", "),
            "curl": listing ? nil : Self.curl(api: api, operation: operations.first, host: host, consent: consent),
        ])
        return html(Pages.render("api", context))
    }

    private func openAPI(_ id: String) -> Answer {
        guard let document = marketplace.apis[id]?.schemaDocument else { return missing("There is no OpenAPI document for \(id).") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Answer(status: 200, contentType: "application/json", body: Array((try? encoder.encode(document)) ?? Data("{}".utf8)) + [0x0A])
    }

    private func missing(_ message: String) -> Answer {
        var answer = html(Pages.render("missing", ["message": message]))
        answer.status = 404
        return answer
    }

    private func html(_ text: String) -> Answer {
        Answer(status: 200, contentType: "text/html; charset=utf-8", body: Array(text.utf8))
    }

    // MARK: Helpers

    /// A call to the API's first operation through this gateway, with an offline consumer's credentials.
    static func curl(api: API, operation: OperationPage?, host: String, consent: API.Consent) -> String {
        let method = operation?.method ?? "GET"
        let path = (api.basePath ?? "") + (operation?.path ?? "/")
        var lines = ["curl -X \(method) 'https://\(host)\(path)'", "  -H 'X-APISETU-CLIENTID: <your client id>'", "  -H 'X-APISETU-APIKEY: <your key>'"]
        if consent == .required { lines.append("  -H 'Authorization: Bearer <the user's consent token>'") }
        if method != "GET" && method != "DELETE" {
            lines.append("  -H 'Content-Type: application/json'")
            lines.append("  -d '\((operation?.example ?? "{}").replacingOccurrences(of: "'", with: "'\\''"))'")
        }
        return lines.joined(separator: " \\\n")
    }

    static func parameters(_ query: String) -> [String: String] {
        guard !query.isEmpty else { return [:] }
        var values: [String: String] = [:]
        for item in URLComponents(string: "?" + query.replacingOccurrences(of: "+", with: "%20"))?.queryItems ?? [] {
            if let value = item.value, !value.isEmpty { values[item.name] = value }
        }
        return values
    }

    static func filter(_ parameters: [String: String]) -> CatalogEntry.Filter {
        CatalogEntry.Filter(
            search: parameters["q"] ?? parameters["search"], type: parameters["type"].flatMap(Publisher.Category.init(rawValue:)),
            publisher: parameters["publisher"], tag: parameters["tag"], consent: parameters["consent"])
    }

    static func value(of entry: CatalogEntry, facet: String) -> [String] {
        switch facet {
        case "publisher": [entry.publisher]
        case "type": [entry.type]
        case "tag": entry.tags
        case "consent": [entry.consent]
        default: []
        }
    }
}

/// One operation as an API page shows it, from the API's OpenAPI document.
struct OperationPage {
    var method: String
    var path: String
    var context: [String: Any]
    /// The request body's example, as JSON, when the document gives one.
    var example: String?

    static func all(of api: API) -> [OperationPage] {
        let document = api.schemaDocument
        return api.operations.map { operation in
            let item = document?["paths"]?[operation.path]
            let entry = item?[operation.method.lowercased()]
            let parameters = ((item?["parameters"]?.arrayValue ?? []) + (entry?["parameters"]?.arrayValue ?? [])).map { resolve($0, in: document) }
            let body = entry?["requestBody"].map { resolve($0, in: document) }
            let media = body?["content"]?["application/json"]
            let example = media.flatMap { exampleText(of: $0, in: document) }
            let responses = (entry?["responses"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { status, value -> [String: Any] in
                let response = resolve(value, in: document)
                let content = response["content"]?["application/json"]
                return Pages.present([
                    "status": status, "description": response["description"]?.stringValue,
                    "schema": content?["schema"].map { pretty(resolve($0, in: document)) },
                    "example": content.flatMap { exampleText(of: $0, in: document) },
                ])
            }
            let context = Pages.present([
                "method": operation.method, "path": (api.basePath ?? "") + operation.path, "operationId": operation.operationId,
                "summary": operation.summary ?? entry?["summary"]?.stringValue, "description": entry?["description"]?.stringValue,
                "anchor": "op-"
                    + (operation.operationId ?? operation.method.lowercased() + operation.path)
                    .map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined(),
                "parameters": parameters.map { parameter in
                    Pages.present([
                        "name": parameter["name"]?.stringValue, "in": parameter["in"]?.stringValue,
                        "required": parameter["required"]?.boolValue == true ? true : nil,
                        "type": parameter["schema"].map { schemaType(resolve($0, in: document)) },
                        "description": parameter["description"]?.stringValue,
                    ])
                },
                "hasParameters": parameters.isEmpty ? nil : true,
                "requestSchema": media?["schema"].map { pretty(resolve($0, in: document)) },
                "requestExample": example,
                "responses": responses, "hasResponses": responses.isEmpty ? nil : true,
            ])
            return OperationPage(method: operation.method, path: operation.path, context: context, example: example)
        }
    }

    /// A `$ref` to within the document, followed (a few steps at most); anything else as it is.
    static func resolve(_ value: JSONValue, in document: JSONValue?) -> JSONValue {
        var current = value
        for _ in 0..<8 {
            guard let reference = current["$ref"]?.stringValue, reference.hasPrefix("#/"),
                let pointer = JSONPointer(parsing: reference.dropFirst()), let target = document?.value(at: pointer)
            else { break }
            current = target
        }
        return current
    }

    static func exampleText(of media: JSONValue, in document: JSONValue?) -> String? {
        if let example = media["example"] { return pretty(example) }
        if let first = media["examples"]?.objectValue?.sorted(by: { $0.key < $1.key }).first?.value {
            return resolve(first, in: document)["value"].map(pretty)
        }
        guard let schema = media["schema"].map({ resolve($0, in: document) }) else { return nil }
        return example(of: schema, in: document, depth: 0).map(pretty)
    }

    /// An example value made from a schema's own `example`, or from those of its properties.
    static func example(of schema: JSONValue, in document: JSONValue?, depth: Int) -> JSONValue? {
        if let example = schema["example"] { return example }
        guard depth < 6, let properties = schema["properties"]?.objectValue else { return nil }
        var members: [String: JSONValue] = [:]
        for (name, property) in properties {
            if let value = example(of: resolve(property, in: document), in: document, depth: depth + 1) { members[name] = value }
        }
        return members.isEmpty ? nil : .object(members)
    }

    static func schemaType(_ schema: JSONValue) -> String {
        var text = schema["type"]?.stringValue ?? schema["type"]?.arrayValue?.compactMap(\.stringValue).joined(separator: " or ") ?? "any"
        if let format = schema["format"]?.stringValue { text += " (\(format))" }
        if let pattern = schema["pattern"]?.stringValue { text += ", matching \(pattern)" }
        return text
    }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
