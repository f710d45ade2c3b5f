import Foundation

/// A JSON Schema (draft 2020-12), compiled once and applied to many documents.
///
/// Setu writes its own validator rather than bringing one in because no JSON
/// Schema library is among the packages this project builds with, and because
/// its errors must point into YAML files with a rule id and a fix. It covers the
/// keywords Setu's schemas use and the rest of the core and applicator
/// vocabularies except `$dynamicRef`, `unevaluatedItems` and
/// `unevaluatedProperties`; `format` and the content keywords are annotations,
/// as the draft says by default. It is tested against the official
/// JSON-Schema-Test-Suite.
///
/// A schema may carry `x-setu-message`, the message to show when a value
/// constraint of that same schema object fails in place of the generic one, and
/// `x-setu-rule` and `x-setu-fix`, the rule id to report it under and what to do.
public final class JSONSchema: Sendable {
    let root: SchemaNode

    /// Keywords a schema may use that this validator cannot apply. A schema
    /// that uses one is refused at compile time rather than half-applied.
    public static let unsupportedKeywords: Set<String> = [
        "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor",
        "unevaluatedItems", "unevaluatedProperties",
    ]

    /// Compiles `schema`, resolving `$ref`s within it and within `resources`
    /// (other schemas, by the URI a `$ref` names them with).
    ///
    /// - Parameters:
    ///   - schema: the schema document.
    ///   - baseURI: the URI the schema was retrieved from; its `$id`, if any, wins.
    ///   - resources: further documents that `$ref`s may name, keyed by URI.
    /// - Throws: `ManifestError` `.invalidSchema` for a malformed schema or an
    ///   unsupported keyword, `.unresolvedReference` for a `$ref` to a document
    ///   that is not loaded.
    public init(_ schema: JSONValue, baseURI: String = "urn:setu:schema", resources: [String: JSONValue] = [:]) throws {
        var documents = resources
        documents[baseURI] = schema
        root = try Self.compile(documents)[baseURI]!.root
    }

    private init(root: SchemaNode) {
        self.root = root
    }

    /// Compiles a set of schema documents that may refer to each other, each
    /// keyed by the URI it was retrieved from, sharing one compilation.
    ///
    /// - Throws: as `init(_:baseURI:resources:)`.
    public static func compile(_ documents: [String: JSONValue]) throws -> [String: JSONSchema] {
        let compiler = SchemaCompiler()
        var roots: [String: JSONSchema] = [:]
        for (uri, document) in documents.sorted(by: { $0.key < $1.key }) {
            roots[uri] = JSONSchema(root: try compiler.compile(document, base: uri, pointer: []))
        }
        try compiler.resolveReferences()
        return roots
    }

    /// Whether `value` is valid, stopping at the first failure.
    public func isValid(_ value: JSONValue) -> Bool {
        var evaluator = SchemaEvaluator(collecting: false)
        return evaluator.validate(value, against: root)
    }

    /// Every violation of the schema in `value`, in document order of discovery.
    public func violations(of value: JSONValue) -> [SchemaViolation] {
        var evaluator = SchemaEvaluator(collecting: true)
        _ = evaluator.validate(value, against: root)
        return evaluator.violations
    }
}

/// One way a value breaks a schema.
public struct SchemaViolation: Sendable, Equatable {
    /// Where in the document the problem is. For an unknown field, the field itself.
    public var pointer: JSONPointer
    /// The schema keyword that failed (`type`, `required`, `additionalProperties`, …).
    public var keyword: String
    /// What is wrong, in words, without the location.
    public var message: String
    /// What would fix it, when there is more to say than the message.
    public var fix: String?
    /// The rule id the schema names for this check (`x-setu-rule`), if any.
    public var rule: String?
}

// MARK: - Compiled form

/// One schema object, with every keyword parsed and every `$ref` linked.
///
/// Nodes are mutated only while `SchemaCompiler` builds and links them; after
/// `JSONSchema.init` returns they are never written again, which is what makes
/// sharing them across threads safe.
// @unchecked: never written once the schema is compiled (above).
final class SchemaNode: @unchecked Sendable {
    var constant: Bool?
    var types: [String]?
    var enumeration: [JSONValue]?
    var constValue: JSONValue?
    var properties: [String: SchemaNode] = [:]
    var patternProperties: [(regex: NSRegularExpression, schema: SchemaNode)] = []
    var additionalProperties: SchemaNode?
    var required: [String] = []
    var propertyNames: SchemaNode?
    var minProperties: Int?
    var maxProperties: Int?
    var dependentRequired: [String: [String]] = [:]
    var dependentSchemas: [String: SchemaNode] = [:]
    var prefixItems: [SchemaNode] = []
    var items: SchemaNode?
    var contains: SchemaNode?
    var minContains: Int?
    var maxContains: Int?
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false
    var minLength: Int?
    var maxLength: Int?
    var pattern: (source: String, regex: NSRegularExpression)?
    var minimum: Double?
    var maximum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?
    var multipleOf: Double?
    var allOf: [SchemaNode] = []
    var anyOf: [SchemaNode] = []
    var oneOf: [SchemaNode] = []
    var not: SchemaNode?
    var ifSchema: SchemaNode?
    var thenSchema: SchemaNode?
    var elseSchema: SchemaNode?
    var ref: SchemaNode?
    var refURI: String?
    var message: String?
    var rule: String?
    var fix: String?
}

/// Builds `SchemaNode`s from schema documents and links `$ref`s, tracking base
/// URIs through `$id` and registering `$anchor`s and JSON-pointer locations.
final class SchemaCompiler {
    private var registry: [String: SchemaNode] = [:]
    private var documents: [String: JSONValue] = [:]
    private var unresolved: [SchemaNode] = []

    func compile(_ value: JSONValue, base: String, pointer: [String]) throws -> SchemaNode {
        let node = SchemaNode()
        var base = stripFragment(base)
        if pointer.isEmpty, documents[base] == nil { documents[base] = value }
        register(node, base: base, pointer: pointer)

        switch value {
        case .bool(let flag):
            node.constant = flag
            return node
        case .object:
            break
        default:
            throw ManifestError(code: .invalidSchema, message: "\(base)#\(JSONPointer(pointer)) is not a schema: a schema is an object or a boolean")
        }
        guard case .object(let schema) = value else { return node }

        var pointer = pointer
        if let id = schema["$id"]?.stringValue {
            base = stripFragment(resolveURI(id, against: base))
            pointer = []
            documents[base] = value
            register(node, base: base, pointer: pointer)
        }
        if let anchor = schema["$anchor"]?.stringValue {
            registry[base + "#" + anchor] = node
        }
        if let keyword = schema.keys.first(where: JSONSchema.unsupportedKeywords.contains) {
            throw ManifestError(
                code: .unsupportedKeyword, message: "\(base)#\(JSONPointer(pointer)) uses '\(keyword)', which Setu's validator does not support")
        }

        func sub(_ keyword: String, _ rest: String...) throws -> SchemaNode? {
            guard let child = schema[keyword] else { return nil }
            return try compile(child, base: base, pointer: pointer + [keyword] + rest)
        }
        func subArray(_ keyword: String) throws -> [SchemaNode] {
            guard let child = schema[keyword] else { return [] }
            guard case .array(let elements) = child else {
                throw ManifestError(code: .invalidSchema, message: "\(base)#\(JSONPointer(pointer + [keyword])) must be an array of schemas")
            }
            return try elements.enumerated().map { try compile($1, base: base, pointer: pointer + [keyword, String($0)]) }
        }
        func subMap(_ keyword: String) throws -> [String: SchemaNode] {
            guard let child = schema[keyword] else { return [:] }
            guard case .object(let members) = child else {
                throw ManifestError(code: .invalidSchema, message: "\(base)#\(JSONPointer(pointer + [keyword])) must be an object of schemas")
            }
            var result: [String: SchemaNode] = [:]
            for (name, member) in members {
                result[name] = try compile(member, base: base, pointer: pointer + [keyword, name])
            }
            return result
        }
        func count(_ keyword: String) -> Int? {
            // A count beyond any document's size (an OpenAPI document's `maxLength: 1e300`) is as
            // good as none at all, and must not trap converting to Int.
            schema[keyword]?.numberValue.map { $0 >= Double(Int.max / 2) ? Int.max / 2 : max(0, Int($0.rounded(.down))) }
        }
        func regex(_ source: String, at keyword: String) throws -> NSRegularExpression {
            do {
                return try NSRegularExpression(pattern: ecmaAnchored(source))
            } catch {
                throw ManifestError(code: .invalidSchema, message: "\(base)#\(JSONPointer(pointer + [keyword])) is not a valid regular expression: \(source)")
            }
        }

        switch schema["type"] {
        case .string(let name): node.types = [name]
        case .array(let names): node.types = names.compactMap(\.stringValue)
        default: break
        }
        node.enumeration = schema["enum"]?.arrayValue
        node.constValue = schema["const"]
        node.properties = try subMap("properties")
        for (source, member) in try subMap("patternProperties") {
            node.patternProperties.append((try regex(source, at: "patternProperties"), member))
        }
        node.additionalProperties = try sub("additionalProperties")
        node.required = schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
        node.propertyNames = try sub("propertyNames")
        node.minProperties = count("minProperties")
        node.maxProperties = count("maxProperties")
        for (name, list) in schema["dependentRequired"]?.objectValue ?? [:] {
            node.dependentRequired[name] = list.arrayValue?.compactMap(\.stringValue) ?? []
        }
        node.dependentSchemas = try subMap("dependentSchemas")
        node.prefixItems = try subArray("prefixItems")
        node.items = try sub("items")
        node.contains = try sub("contains")
        node.minContains = count("minContains")
        node.maxContains = count("maxContains")
        node.minItems = count("minItems")
        node.maxItems = count("maxItems")
        node.uniqueItems = schema["uniqueItems"]?.boolValue ?? false
        node.minLength = count("minLength")
        node.maxLength = count("maxLength")
        if let source = schema["pattern"]?.stringValue {
            node.pattern = (source, try regex(source, at: "pattern"))
        }
        node.minimum = schema["minimum"]?.numberValue
        node.maximum = schema["maximum"]?.numberValue
        node.exclusiveMinimum = schema["exclusiveMinimum"]?.numberValue
        node.exclusiveMaximum = schema["exclusiveMaximum"]?.numberValue
        node.multipleOf = schema["multipleOf"]?.numberValue
        node.allOf = try subArray("allOf")
        node.anyOf = try subArray("anyOf")
        node.oneOf = try subArray("oneOf")
        node.not = try sub("not")
        node.ifSchema = try sub("if")
        node.thenSchema = try sub("then")
        node.elseSchema = try sub("else")
        _ = try subMap("$defs")
        node.message = schema["x-setu-message"]?.stringValue
        node.rule = schema["x-setu-rule"]?.stringValue
        node.fix = schema["x-setu-fix"]?.stringValue
        if let reference = schema["$ref"]?.stringValue {
            node.refURI = resolveURI(reference, against: base)
            unresolved.append(node)
        }
        return node
    }

    /// Links every `$ref` to its target, compiling targets that sit in places no
    /// keyword compiled (a pointer into an unknown keyword, say).
    func resolveReferences() throws {
        while let node = unresolved.popLast() {
            guard let uri = node.refURI else { continue }
            node.ref = try target(of: uri)
        }
    }

    private func target(of uri: String) throws -> SchemaNode {
        let (document, fragment) = splitFragment(uri)
        let decoded = fragment.removingPercentEncoding ?? fragment
        if decoded.isEmpty || decoded.hasPrefix("/") {
            guard let pointer = JSONPointer(parsing: Substring(decoded)) else {
                throw ManifestError(code: .invalidSchema, message: "$ref '\(uri)' has a malformed JSON pointer")
            }
            if let node = registry[document + "#" + pointer.description] { return node }
            guard let root = documents[document] else {
                throw ManifestError(code: .unresolvedReference, message: "$ref '\(uri)' names a schema that is not loaded")
            }
            guard let value = root.value(at: pointer) else {
                throw ManifestError(code: .invalidSchema, message: "$ref '\(uri)' points at nothing")
            }
            return try compile(value, base: document, pointer: pointer.tokens)
        }
        if let node = registry[document + "#" + decoded] { return node }
        throw ManifestError(
            code: documents[document] == nil ? .unresolvedReference : .invalidSchema,
            message: "$ref '\(uri)' names an anchor that does not exist")
    }

    private func register(_ node: SchemaNode, base: String, pointer: [String]) {
        let key = base + "#" + JSONPointer(pointer).description
        if registry[key] == nil { registry[key] = node }
    }
}

private func splitFragment(_ uri: String) -> (String, String) {
    guard let hash = uri.firstIndex(of: "#") else { return (uri, "") }
    return (String(uri[..<hash]), String(uri[uri.index(after: hash)...]))
}

private func stripFragment(_ uri: String) -> String {
    splitFragment(uri).0
}

/// Resolves a URI reference against a base (RFC 3986), enough for `$id` and `$ref`.
private func resolveURI(_ reference: String, against base: String) -> String {
    if reference.hasPrefix("#") { return stripFragment(base) + reference }
    if reference.range(of: "^[A-Za-z][A-Za-z0-9+.-]*:", options: .regularExpression) != nil { return reference }
    if let baseURL = URL(string: stripFragment(base)), let resolved = URL(string: reference, relativeTo: baseURL) {
        return resolved.absoluteString
    }
    return reference
}

// MARK: - Evaluation

/// Applies compiled schemas to a value. In collecting mode it records every
/// violation; otherwise it stops at the first.
struct SchemaEvaluator {
    let collecting: Bool
    private(set) var violations: [SchemaViolation] = []
    private var path: [String] = []

    init(collecting: Bool) {
        self.collecting = collecting
    }

    mutating func validate(_ value: JSONValue, against node: SchemaNode) -> Bool {
        if let constant = node.constant {
            if !constant { fail(node, "false", "is not allowed here") }
            return constant
        }
        var valid = true

        if let target = node.ref {
            valid = validate(value, against: target) && valid
            if !valid && !collecting { return false }
        }
        if let types = node.types, !types.contains(where: { value.matches(type: $0) }) {
            let wanted = types.map(article).joined(separator: " or ")
            let scalar: Bool
            switch value {
            case .number, .bool: scalar = true
            default: scalar = false
            }
            let fix =
                types.contains("string") && scalar
                ? "quote the value so YAML reads it as a string, e.g. \"\(render(value))\""
                : "write \(wanted) here"
            fail(node, "type", "must be \(wanted), not \(article(value.typeName))", fix: fix)
            return false
        }
        if let options = node.enumeration, !options.contains(value) {
            let listed = options.map(render).joined(separator: ", ")
            fail(node, "enum", "must be one of: \(listed) (found \(render(value)))")
            valid = false
        }
        if let constant = node.constValue, constant != value {
            fail(node, "const", "must be \(render(constant)) (found \(render(value)))")
            valid = false
        }
        if !valid && !collecting { return false }

        switch value {
        case .object(let members): valid = validateObject(members, node) && valid
        case .array(let elements): valid = validateArray(elements, node) && valid
        case .string(let text): valid = validateString(text, node) && valid
        case .number(let number): valid = validateNumber(number, node) && valid
        default: break
        }
        if !valid && !collecting { return false }
        return validateApplicators(value, node) && valid
    }

    private mutating func validateObject(_ members: [String: JSONValue], _ node: SchemaNode) -> Bool {
        var valid = true
        for name in node.required where members[name] == nil {
            fail(node, "required", "is missing required field '\(name)'", fix: "add '\(name)'")
            valid = false
            if !collecting { return false }
        }
        if let minimum = node.minProperties, members.count < minimum {
            fail(node, "minProperties", "must have at least \(minimum) \(minimum == 1 ? "field" : "fields")")
            valid = false
        }
        if let maximum = node.maxProperties, members.count > maximum {
            fail(node, "maxProperties", "must have at most \(maximum) \(maximum == 1 ? "field" : "fields")")
            valid = false
        }
        for (name, needed) in node.dependentRequired where members[name] != nil {
            for other in needed where members[other] == nil {
                fail(node, "dependentRequired", "has '\(name)', so it must also have '\(other)'", fix: "add '\(other)'")
                valid = false
            }
        }
        if !valid && !collecting { return false }
        for (name, schema) in node.dependentSchemas where members[name] != nil {
            valid = validate(.object(members), against: schema) && valid
        }
        func check(_ name: String, _ member: JSONValue) -> Bool {
            var valid = true
            if let names = node.propertyNames, !validate(.string(name), against: names) {
                valid = false
            }
            var matched = false
            if let schema = node.properties[name] {
                matched = true
                valid = validate(member, against: schema) && valid
            }
            for (regex, schema) in node.patternProperties where regex.matches(name) {
                matched = true
                valid = validate(member, against: schema) && valid
            }
            if !matched, let additional = node.additionalProperties {
                if additional.constant == false {
                    let known = Array(node.properties.keys)
                    let suggestion = closest(to: name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                    let fix = known.isEmpty ? "remove it" : "remove it, or use one of: \(known.sorted().joined(separator: ", "))"
                    fail(node, "additionalProperties", "is not a known field\(suggestion)", fix: fix)
                    valid = false
                } else {
                    valid = validate(member, against: additional) && valid
                }
            }
            return valid
        }
        guard collecting else {
            // Only whether it is valid: in any order, and no path, since nothing is reported.
            for (name, member) in members where !check(name, member) { return false }
            return valid
        }
        // Members in a stable order, so diagnostics come out the same every run.
        for name in members.keys.sorted() {
            path.append(name)
            valid = check(name, members[name]!) && valid
            path.removeLast()
        }
        return valid
    }

    private mutating func validateArray(_ elements: [JSONValue], _ node: SchemaNode) -> Bool {
        var valid = true
        if let minimum = node.minItems, elements.count < minimum {
            fail(node, "minItems", "must have at least \(minimum) \(minimum == 1 ? "item" : "items")")
            valid = false
        }
        if let maximum = node.maxItems, elements.count > maximum {
            fail(node, "maxItems", "must have at most \(maximum) \(maximum == 1 ? "item" : "items")")
            valid = false
        }
        if node.uniqueItems {
            var seen: [JSONValue: Int] = [:]
            for (index, element) in elements.enumerated() {
                if let first = seen[element] {
                    fail(node, "uniqueItems", "has the same item at \(first) and \(index)", fix: "remove the repeated item")
                    valid = false
                    break
                }
                seen[element] = index
            }
        }
        if !valid && !collecting { return false }
        for (index, element) in elements.enumerated() {
            let schema = index < node.prefixItems.count ? node.prefixItems[index] : node.items
            guard let schema else { continue }
            path.append(String(index))
            valid = validate(element, against: schema) && valid
            path.removeLast()
            if !valid && !collecting { return false }
        }
        if let contains = node.contains {
            var quiet = SchemaEvaluator(collecting: false)
            let matches = elements.filter { quiet.validate($0, against: contains) }.count
            let minimum = node.minContains ?? 1
            if matches < minimum {
                fail(node, "contains", "must contain at least \(minimum) matching \(minimum == 1 ? "item" : "items") (found \(matches))")
                valid = false
            }
            if let maximum = node.maxContains, matches > maximum {
                fail(node, "maxContains", "must contain at most \(maximum) matching \(maximum == 1 ? "item" : "items") (found \(matches))")
                valid = false
            }
        }
        return valid
    }

    private mutating func validateString(_ text: String, _ node: SchemaNode) -> Bool {
        var valid = true
        if node.minLength != nil || node.maxLength != nil {
            let length = text.unicodeScalars.count
            if let minimum = node.minLength, length < minimum {
                fail(node, "minLength", minimum == 1 ? "must not be empty" : "must be at least \(minimum) characters long")
                valid = false
            }
            if let maximum = node.maxLength, length > maximum {
                fail(node, "maxLength", "must be at most \(maximum) characters long (found \(length))")
                valid = false
            }
        }
        if let pattern = node.pattern, !pattern.regex.matches(text) {
            fail(node, "pattern", "must match the pattern \(pattern.source) (found \(render(.string(text))))")
            valid = false
        }
        return valid
    }

    private mutating func validateNumber(_ number: Double, _ node: SchemaNode) -> Bool {
        var valid = true
        if let minimum = node.minimum, number < minimum {
            fail(node, "minimum", "must be at least \(format(minimum)) (found \(format(number)))")
            valid = false
        }
        if let maximum = node.maximum, number > maximum {
            fail(node, "maximum", "must be at most \(format(maximum)) (found \(format(number)))")
            valid = false
        }
        if let minimum = node.exclusiveMinimum, number <= minimum {
            fail(node, "exclusiveMinimum", "must be greater than \(format(minimum)) (found \(format(number)))")
            valid = false
        }
        if let maximum = node.exclusiveMaximum, number >= maximum {
            fail(node, "exclusiveMaximum", "must be less than \(format(maximum)) (found \(format(number)))")
            valid = false
        }
        if let divisor = node.multipleOf {
            let quotient = number / divisor
            // Decimal divisors such as 0.01 are not exact in binary; a quotient
            // within rounding error of a whole number counts as one.
            let whole = quotient.isFinite && abs(quotient - quotient.rounded()) <= 1e-9 * max(1, abs(quotient))
            if !whole {
                fail(node, "multipleOf", "must be a multiple of \(format(divisor))")
                valid = false
            }
        }
        return valid
    }

    private mutating func validateApplicators(_ value: JSONValue, _ node: SchemaNode) -> Bool {
        var valid = true
        for schema in node.allOf {
            valid = validate(value, against: schema) && valid
            if !valid && !collecting { return false }
        }
        if !node.anyOf.isEmpty {
            var quiet = SchemaEvaluator(collecting: false)
            if !node.anyOf.contains(where: { quiet.validate(value, against: $0) }) {
                fail(node, "anyOf", "does not match any of the allowed forms")
                valid = false
            }
        }
        if !node.oneOf.isEmpty {
            var quiet = SchemaEvaluator(collecting: false)
            let matching = node.oneOf.filter { quiet.validate(value, against: $0) }.count
            if matching != 1 {
                fail(
                    node, "oneOf",
                    matching == 0 ? "does not match any of the allowed forms" : "matches \(matching) of the allowed forms, and must match exactly one")
                valid = false
            }
        }
        if let negated = node.not {
            var quiet = SchemaEvaluator(collecting: false)
            if quiet.validate(value, against: negated) {
                fail(node, "not", "matches a form that is not allowed here")
                valid = false
            }
        }
        if let condition = node.ifSchema {
            var quiet = SchemaEvaluator(collecting: false)
            let branch = quiet.validate(value, against: condition) ? node.thenSchema : node.elseSchema
            if let branch {
                valid = validate(value, against: branch) && valid
            }
        }
        return valid
    }

    private mutating func fail(_ node: SchemaNode, _ keyword: String, _ message: String, fix: String? = nil) {
        guard collecting else { return }
        // A schema's own message explains its value constraints; structural
        // failures (wrong type, missing or unknown fields) keep the generic text.
        let structural = keyword == "type" || keyword == "required" || keyword == "additionalProperties"
        violations.append(
            SchemaViolation(
                pointer: JSONPointer(path), keyword: keyword,
                message: structural ? message : node.message ?? message,
                fix: structural ? fix : node.fix ?? fix, rule: structural ? nil : node.rule))
    }
}

// MARK: - Small helpers

extension JSONValue {
    func matches(type name: String) -> Bool {
        switch (name, self) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string),
            ("array", .array), ("object", .object):
            return true
        case ("integer", .number(let number)):
            return number.isWholeNumber
        default:
            return false
        }
    }
}

/// A schema pattern (ECMA-262) for ICU's engine. The two read `$` differently: in
/// ECMA-262 it matches only at the end of the string, while ICU also matches before a
/// final line break, so `^[a-z]+$` would accept `"acme\n"`, which YAML's block scalars
/// produce. Each `$` outside a character class becomes ICU's `\z`.
func ecmaAnchored(_ pattern: String) -> String {
    var out = ""
    var escaped = false, inClass = false
    for character in pattern {
        if escaped {
            out.append(character)
            escaped = false
            continue
        }
        switch character {
        case "\\": escaped = true
        case "[": inClass = true
        case "]": inClass = false
        case "$" where !inClass:
            out += "\\z"
            continue
        default: break
        }
        out.append(character)
    }
    return out
}

extension NSRegularExpression {
    func matches(_ text: String) -> Bool {
        firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}

private func article(_ type: String) -> String {
    switch type {
    case "integer", "array", "object": return "an \(type)"
    case "null": return "null"
    default: return "a \(type)"
    }
}

private func format(_ number: Double) -> String {
    number.isWholeNumber && abs(number) < 1e15 ? String(Int64(number)) : String(number)
}

/// A short rendering of a value for messages: strings quoted, big values elided.
func render(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool(let flag): return String(flag)
    case .number(let number): return format(number)
    case .string(let text):
        let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return "'\(shown)'"
    case .array: return "a list"
    case .object: return "a mapping"
    }
}

/// The candidate nearest to `word` by edit distance, when it is near enough to
/// be a likely typo.
func closest(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }) else { return nil }
    return best.1 <= max(1, min(word.count, best.0.count) / 3) ? best.0 : nil
}

/// Edit distance counting a swap of two neighbouring letters as one edit
/// (optimal string alignment), since transposed letters are the commonest typo.
private func editDistance(_ left: String, _ right: String) -> Int {
    let a = Array(left.unicodeScalars), b = Array(right.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
            }
        }
    }
    return table[a.count][b.count]
}
