import Foundation
import NIOCore
import NIOHTTP1
import SetuEntitlements
import SetuManifest

/// Where and how a request fails its operation's OpenAPI description.
struct RequestCheckFailure: Equatable {
    /// The parameter that failed (`query parameter 'limit'`), when one did.
    var parameter: String?
    /// The JSON pointer into the body where it failed; empty for the body as a whole.
    var pointer: String
    /// What is wrong there.
    var message: String
    /// Whether the body's media type is one the operation does not take (415, not 400).
    var unsupportedMediaType = false

    /// The failing place, in words: `query parameter 'limit'`, `body at /txnId`, `body`.
    var place: String {
        if let parameter { return parameter }
        return pointer.isEmpty ? "body" : "body at \(pointer)"
    }

    /// The hit log's note in `report` mode: the place and the message.
    var note: String { "\(place): \(message)" }
}

/// An operation's request as its OpenAPI document describes it, compiled once per routing
/// table: parameters with their schemas, and the media types with theirs.
struct RequestCheck: Sendable {
    struct Parameter: Sendable {
        let description: OperationRequest.Parameter
        /// The name as the place says it: `query parameter 'limit'`.
        let place: String
        let schema: JSONSchema?
    }

    struct Media: Sendable {
        /// `type/subtype` in lowercase; `*` for a wildcard part.
        let type: Substring
        let subtype: Substring
        let name: String
        let schema: JSONSchema?
        /// JSON (`application/json`, `*/*+json`): the body is parsed and its schema applied.
        let isJSON: Bool
    }

    let mode: API.Validation
    let parameters: [Parameter]
    /// Path parameters' places in the template, by segment index.
    let pathSegments: [Int: String]
    let bodyRequired: Bool
    let media: [Media]

    /// Whether the body must be read whole before the request goes on: one of its media
    /// types has a JSON schema.
    var needsBody: Bool { mode != .off && media.contains { $0.isJSON && $0.schema != nil } }

    init(mode: API.Validation, request: OperationRequest, template: [CompiledOperation.Segment], schemas: [String: JSONSchema]) {
        self.mode = mode
        parameters = request.parameters.filter { $0.location != .cookie }.map { parameter in
            Parameter(
                description: parameter, place: "\(parameter.location.rawValue) parameter '\(parameter.name)'",
                schema: parameter.schema.flatMap { schemas[$0] })
        }
        var pathSegments: [Int: String] = [:]
        for (index, segment) in template.enumerated() {
            if case .parameter(let name) = segment { pathSegments[index] = name }
        }
        self.pathSegments = pathSegments
        bodyRequired = request.bodyRequired
        media = request.body.map { media in
            let parts = media.name.split(separator: "/", maxSplits: 1)
            let type = parts.first ?? "*"
            let subtype = parts.count > 1 ? parts[1] : "*"
            return Media(
                type: type, subtype: subtype, name: media.name, schema: media.schema.flatMap { schemas[$0] },
                isJSON: subtype == "json" || subtype.hasSuffix("+json") || (type == "*" && subtype == "*"))
        }
    }

    /// The first way the request fails its description, if any.
    func firstFailure(
        path: [Substring], query: Substring?, headers: HTTPHeaders,
        contentType: String?, body: RequestBody, bodyExpected: Bool
    ) -> RequestCheckFailure? {
        var queryValues: [String: [String]]?
        for parameter in parameters {
            let description = parameter.description
            var values: [String] = []
            switch description.location {
            case .path:
                for (index, name) in pathSegments where name == description.name && index < path.count {
                    values.append(Self.percentDecoded(path[index], plusIsSpace: false))
                }
            case .query:
                if queryValues == nil { queryValues = Self.parse(query: query) }
                values = queryValues?[description.name] ?? []
            case .header:
                for (name, value) in headers where name.caseInsensitiveCompare(description.name) == .orderedSame {
                    values.append(value)
                }
            case .cookie:
                continue
            }
            if values.isEmpty {
                if description.required {
                    return RequestCheckFailure(parameter: parameter.place, pointer: "", message: "is required but was not sent")
                }
                continue
            }
            guard let schema = parameter.schema, description.type != "object" else { continue }
            let value: JSONValue
            if description.type == "array" {
                let items =
                    description.explode && description.location == .query
                    ? values : values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                value = .array(items.map { Self.typed($0, as: description.itemType) })
            } else {
                guard values.count == 1 else {
                    return RequestCheckFailure(parameter: parameter.place, pointer: "", message: "is sent \(values.count) times but takes one value")
                }
                value = Self.typed(values[0], as: description.type)
            }
            if !schema.isValid(value), let violation = schema.violations(of: value).first {
                let inner = violation.pointer.tokens.isEmpty ? "" : " at \(violation.pointer)"
                return RequestCheckFailure(
                    parameter: parameter.place + inner, pointer: violation.pointer.description,
                    message: violation.message)
            }
        }
        return bodyFailure(contentType: contentType, body: body, bodyExpected: bodyExpected)
    }

    private func bodyFailure(contentType: String?, body: RequestBody, bodyExpected: Bool) -> RequestCheckFailure? {
        guard !media.isEmpty else { return nil }
        guard body.length > 0 || bodyExpected else {
            return bodyRequired
                ? RequestCheckFailure(pointer: "", message: "is required: send \(media.map(\.name).joined(separator: " or "))")
                : nil
        }
        guard let contentType, let match = self.media(for: contentType) else {
            return RequestCheckFailure(
                pointer: "",
                message: contentType.map { "has Content-Type \($0), which the operation does not take; send \(media.map(\.name).joined(separator: " or "))" }
                    ?? "has no Content-Type; send \(media.map(\.name).joined(separator: " or "))",
                unsupportedMediaType: true)
        }
        guard match.isJSON, let schema = match.schema, let parsed = body.json else { return nil }
        switch parsed {
        case .failure(let error):
            return RequestCheckFailure(pointer: "", message: "is not valid JSON (\(error.reason))")
        case .success(let document):
            // The quick check first; the failure's place only for a body that fails.
            guard !schema.isValid(document), let violation = schema.violations(of: document).first else { return nil }
            return RequestCheckFailure(pointer: violation.pointer.description, message: violation.message)
        }
    }

    /// The declared media type a `Content-Type` falls under: exact first, then `type/*`, then `*/*`.
    private func media(for contentType: String) -> Media? {
        let essence = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let parts = essence.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let (type, subtype) = (parts[0], parts[1])
        return media.first { $0.type == type && $0.subtype == subtype }
            ?? media.first { $0.type == type && $0.subtype == "*" }
            ?? media.first { $0.type == "*" && $0.subtype == "*" }
    }

    /// The text of a parameter as the JSON value its schema's type reads it as; text that
    /// is not of the type stays a string, which the schema then refuses by name.
    static func typed(_ text: String, as type: String?) -> JSONValue {
        switch type {
        case "integer", "number":
            if let number = Double(text), number.isFinite, !text.contains(where: { $0.isLetter && $0 != "e" && $0 != "E" }) {
                return .number(number)
            }
        case "boolean":
            if text == "true" { return .bool(true) }
            if text == "false" { return .bool(false) }
        case "null":
            if text.isEmpty { return .null }
        default:
            break
        }
        return .string(text)
    }

    /// A query string's parameters, `+` and percent-escapes decoded.
    static func parse(query: Substring?) -> [String: [String]] {
        var values: [String: [String]] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(parts[0], plusIsSpace: true)
            values[name, default: []].append(parts.count > 1 ? percentDecoded(parts[1], plusIsSpace: true) : "")
        }
        return values
    }

    static func percentDecoded(_ text: Substring, plusIsSpace: Bool) -> String {
        let spaced = plusIsSpace ? text.replacingOccurrences(of: "+", with: " ") : String(text)
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// Compiles the request checks of a route's operations from its OpenAPI document, all in
/// one schema compilation, so that `$ref`s shared by operations are compiled once.
enum RequestCheckCompiler {
    /// The schemas by the pointer the operations name them with, and what could not be compiled.
    static func schemas(of route: GatewaySnapshot.Route) -> (schemas: [String: JSONSchema], problems: [String]) {
        guard let document = route.schemaDocument, route.validation != .off else { return ([:], []) }
        var pointers: Set<String> = []
        for operation in route.operations {
            for parameter in operation.request.parameters { if let schema = parameter.schema { pointers.insert(schema) } }
            for media in operation.request.body { if let schema = media.schema { pointers.insert(schema) } }
        }
        let base = "urn:setu:openapi:" + route.api
        func entry(_ pointer: String) -> (String, JSONValue) {
            ("urn:setu:check:" + pointer, .object(["$ref": .string(base + "#" + pointer)]))
        }
        var documents: [String: JSONValue] = [base: document]
        for pointer in pointers {
            let (uri, reference) = entry(pointer)
            documents[uri] = reference
        }
        if let compiled = try? JSONSchema.compile(documents) {
            var schemas: [String: JSONSchema] = [:]
            for pointer in pointers { schemas[pointer] = compiled["urn:setu:check:" + pointer] }
            return (schemas, [])
        }
        // One schema the validator cannot take must not switch the others off: each alone.
        var schemas: [String: JSONSchema] = [:]
        var problems: [String] = []
        for pointer in pointers.sorted() {
            let (uri, reference) = entry(pointer)
            do {
                schemas[pointer] = try JSONSchema.compile([base: document, uri: reference])[uri]
            } catch {
                problems.append("\(route.api): the schema at \(pointer) is not checked: \(error)")
            }
        }
        return (schemas, problems)
    }
}
