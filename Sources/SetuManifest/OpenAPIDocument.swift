/// What Setu needs from an OpenAPI 3 document: its title, version, servers and
/// operations.
///
/// Setu reads these few fields itself rather than through a full OpenAPI model
/// (OpenAPIKit is on the machine) because it needs only them, because the real
/// API Setu documents it must accept are not always strictly valid, and because
/// its YAML loader already gives line and column for every problem.
public struct OpenAPIDocument: Sendable, Hashable {
    /// The `openapi` version string, e.g. `3.0.0`.
    public var version: String
    /// `info.title`.
    public var title: String
    /// `info.version`.
    public var apiVersion: String
    /// `info.summary` (OpenAPI 3.1), if any.
    public var summary: String?
    /// `info.description`, if any.
    public var description: String?
    /// `servers[].url`, in order.
    public var servers: [String]
    /// The tags the document declares in its top-level `tags`, then the categories its
    /// `info` gives (`x-apisguru-categories`, as API Setu's documents have), in order.
    /// Tags only operations name are left out: API Setu marks every operation `APIs`.
    public var tags: [String]
    /// Every operation, sorted by path then method.
    public var operations: [APIOperation]
    /// The document with its schemas in JSON Schema 2020-12's form (`OpenAPISchemaDialect`).
    public var schemaDocument: JSONValue

    /// The HTTP methods OpenAPI 3 allows as path item keys.
    public static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// A reason the document is not usable, with where it is.
    public struct ReadError: Error, Sendable, Equatable {
        public var pointer: JSONPointer
        public var message: String

        /// Creates a problem.
        public init(pointer: JSONPointer, message: String) {
            self.pointer = pointer
            self.message = message
        }
    }

    /// Reads the document; throws a `ReadError` when it is not OpenAPI 3.
    public init(_ value: JSONValue) throws(ReadError) {
        guard case .object = value else {
            throw ReadError(pointer: JSONPointer(), message: "is not an OpenAPI document: the top level must be a mapping")
        }
        guard let version = value["openapi"]?.stringValue else {
            let swagger = value["swagger"] != nil
            throw ReadError(
                pointer: JSONPointer(),
                message: swagger
                    ? "is a Swagger 2 document; Setu needs OpenAPI 3 (convert it, e.g. with swagger2openapi)"
                    : "is not an OpenAPI 3 document: it has no 'openapi' version field")
        }
        guard version.hasPrefix("3.") else {
            throw ReadError(pointer: JSONPointer(["openapi"]), message: "is '\(version)'; Setu reads OpenAPI 3.x documents")
        }
        guard let info = value["info"]?.objectValue, let title = info["title"]?.stringValue else {
            throw ReadError(pointer: JSONPointer(["info"]), message: "must have a title (info.title)")
        }
        guard let paths = value["paths"]?.objectValue else {
            throw ReadError(pointer: JSONPointer(), message: "has no 'paths' mapping")
        }
        var operations: [APIOperation] = []
        var tags = value["tags"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        for category in info["x-apisguru-categories"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !tags.contains(category) {
            tags.append(category)
        }
        for (path, item) in paths {
            guard path.hasPrefix("/") else {
                throw ReadError(pointer: JSONPointer(["paths", path]), message: "is not a path: paths start with '/'")
            }
            guard case .object(let methods) = item else {
                throw ReadError(pointer: JSONPointer(["paths", path]), message: "must be a mapping of operations")
            }
            for method in Self.methods {
                guard let operation = methods[method] else { continue }
                guard case .object = operation else {
                    throw ReadError(pointer: JSONPointer(["paths", path, method]), message: "must be a mapping")
                }
                operations.append(
                    APIOperation(
                        method: method.uppercased(), path: path,
                        operationId: operation["operationId"]?.stringValue,
                        summary: operation["summary"]?.stringValue,
                        request: OperationRequest(document: value, path: path, method: method)))
            }
        }
        operations.sort {
            ($0.path, Self.methods.firstIndex(of: $0.method.lowercased()) ?? 0) < ($1.path, Self.methods.firstIndex(of: $1.method.lowercased()) ?? 0)
        }
        self.version = version
        self.title = title
        self.apiVersion = info["version"]?.stringValue ?? info["version"]?.numberValue.map { String($0) } ?? ""
        self.summary = info["summary"]?.stringValue
        self.description = info["description"]?.stringValue
        self.servers = value["servers"]?.arrayValue?.compactMap { $0["url"]?.stringValue } ?? []
        self.tags = tags
        self.operations = operations
        self.schemaDocument = OpenAPISchemaDialect.convert(value, openapiVersion: version)
    }
}
