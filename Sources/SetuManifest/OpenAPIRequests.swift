/// What an operation accepts, read from its OpenAPI document: its parameters and its
/// request body. Schemas are named by JSON pointers into the document's JSON Schema form
/// (`OpenAPISchemaDialect`), so the gateway compiles each document once, `$ref`s and all.
public struct OperationRequest: Sendable, Hashable {
    /// A path, query or header parameter.
    public struct Parameter: Sendable, Hashable {
        public enum Location: String, Sendable, Hashable { case path, query, header, cookie }

        public var name: String
        public var location: Location
        public var required: Bool
        /// Where its schema is in the document; nil when it has none.
        public var schema: String?
        /// The schema's `type`, which says how the text sent is read: `integer`, `array`, ….
        public var type: String?
        /// For arrays: the items' `type`.
        public var itemType: String?
        /// For arrays: whether a query parameter repeats (`explode`, the default for `form`).
        public var explode: Bool

        public init(
            name: String, location: Location, required: Bool, schema: String?, type: String?, itemType: String?,
            explode: Bool
        ) {
            self.name = name
            self.location = location
            self.required = required
            self.schema = schema
            self.type = type
            self.itemType = itemType
            self.explode = explode
        }
    }

    /// A media type the body may have, and where its schema is.
    public struct MediaType: Sendable, Hashable {
        /// `application/json`, `application/*`, `*/*`, … in lowercase.
        public var name: String
        public var schema: String?

        public init(name: String, schema: String?) {
            self.name = name
            self.schema = schema
        }
    }

    public var parameters: [Parameter]
    /// Whether a body must be sent.
    public var bodyRequired: Bool
    /// The media types a body may have; empty when the operation declares no body.
    public var body: [MediaType]

    public init(parameters: [Parameter] = [], bodyRequired: Bool = false, body: [MediaType] = []) {
        self.parameters = parameters
        self.bodyRequired = bodyRequired
        self.body = body
    }

    /// Whether the operation's body schema has a `consentArtifact` property: API Setu's
    /// document APIs carry the user's consent there.
    public var carriesConsentArtifact = false

    /// Reads an operation's request from the document, following `$ref`s to components.
    /// - Parameters:
    ///   - document: the whole document.
    ///   - path: the path item's key; `method` the operation's, in lowercase.
    init(document: JSONValue, path: String, method: String) {
        let pathItem = JSONPointer(["paths", path])
        let operation = pathItem.appending(method)
        var parameters: [String: Parameter] = [:]
        var order: [String] = []
        // Path-item parameters first; the operation's override them by name and location.
        for base in [pathItem, operation] {
            let list = document.value(at: base.appending("parameters"))?.arrayValue ?? []
            for index in list.indices {
                guard let (pointer, value) = Self.resolve(document, base.appending("parameters").appending(String(index))),
                    let name = value["name"]?.stringValue,
                    let location = value["in"]?.stringValue.flatMap(Parameter.Location.init)
                else { continue }
                // OpenAPI ignores header parameters named Accept, Content-Type and Authorization.
                if location == .header && ["accept", "content-type", "authorization"].contains(name.lowercased()) { continue }
                let schemaPointer = pointer.appending("schema")
                let schema = Self.resolve(document, schemaPointer)
                let style = value["style"]?.stringValue ?? (location == .query || location == .cookie ? "form" : "simple")
                let key = location.rawValue + " " + (location == .header ? name.lowercased() : name)
                if parameters[key] == nil { order.append(key) }
                parameters[key] = Parameter(
                    name: name, location: location,
                    required: location == .path || value["required"]?.boolValue == true,
                    schema: schema == nil ? nil : schemaPointer.description,
                    type: Self.type(of: schema?.1),
                    itemType: Self.type(of: schema.flatMap { Self.resolve(document, $0.0.appending("items"))?.1 }),
                    explode: value["explode"]?.boolValue ?? (style == "form"))
            }
        }
        self.parameters = order.compactMap { parameters[$0] }
        bodyRequired = false
        body = []
        guard let (bodyPointer, requestBody) = Self.resolve(document, operation.appending("requestBody")) else { return }
        bodyRequired = requestBody["required"]?.boolValue ?? false
        for (name, media) in (requestBody["content"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let schemaPointer = bodyPointer.appending("content").appending(name).appending("schema")
            let schema = media["schema"] == nil ? nil : schemaPointer.description
            body.append(MediaType(name: name.lowercased(), schema: schema))
            if let (_, resolved) = Self.resolve(document, schemaPointer),
                resolved["properties"]?["consentArtifact"] != nil
            {
                carriesConsentArtifact = true
            }
        }
    }

    /// The value at `pointer`, following `$ref`s within the document (at most 16), and
    /// where it was found.
    static func resolve(_ document: JSONValue, _ pointer: JSONPointer) -> (JSONPointer, JSONValue)? {
        var pointer = pointer
        for _ in 0..<16 {
            guard let value = document.value(at: pointer) else { return nil }
            guard let reference = value["$ref"]?.stringValue, reference.hasPrefix("#"),
                let target = JSONPointer(parsing: reference.dropFirst())
            else { return (pointer, value) }
            pointer = target
        }
        return nil
    }

    /// A schema's `type`, following a `$ref`; the first non-null one of a list.
    private static func type(of schema: JSONValue?) -> String? {
        switch schema?["type"] {
        case .string(let name): return name
        case .array(let names): return names.compactMap(\.stringValue).first { $0 != "null" }
        default: return nil
        }
    }
}

/// OpenAPI 3.0's schema dialect, rewritten as JSON Schema 2020-12, which the project's
/// validator applies; OpenAPI 3.1 schemas are 2020-12 already and pass unchanged.
///
/// 3.0 differs where it matters for validation in three ways: `nullable: true` adds `null`
/// to the `type`; `exclusiveMinimum` and `exclusiveMaximum` are booleans that make
/// `minimum` and `maximum` exclusive; and a `$ref`'s siblings are ignored. Annotations
/// (`example`, `discriminator`, `xml`, `readOnly`, …) need no rewriting: the validator
/// ignores keywords it does not know.
public enum OpenAPISchemaDialect {
    /// The document with every schema in JSON Schema 2020-12's form.
    public static func convert(_ document: JSONValue, openapiVersion: String) -> JSONValue {
        guard openapiVersion.hasPrefix("3.0") else { return document }
        return rewrite(document)
    }

    private static func rewrite(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements):
            return .array(elements.map(rewrite))
        case .object(var members):
            for (key, member) in members { members[key] = rewrite(member) }
            if members["$ref"]?.stringValue != nil {
                // 3.0 ignores everything beside a $ref.
                return .object(["$ref": members["$ref"]!])
            }
            if case .bool(let nullable) = members["nullable"] {
                members["nullable"] = nil
                if nullable {
                    switch members["type"] {
                    case .string(let type): members["type"] = .array([.string(type), .string("null")])
                    case .array(let types) where !types.contains(.string("null")): members["type"] = .array(types + [.string("null")])
                    default: break
                    }
                    if case .array(let options) = members["enum"], !options.contains(.null) {
                        members["enum"] = .array(options + [.null])
                    }
                }
            }
            for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                guard case .bool(let exclusive) = members[flag] else { continue }
                members[flag] = nil
                if exclusive, let limit = members[bound] {
                    members[flag] = limit
                    members[bound] = nil
                }
            }
            return .object(members)
        default:
            return value
        }
    }
}
