import Foundation
import Yams

/// Limits that keep hostile or broken input from exhausting time or memory.
public struct LoadLimits: Sendable, Equatable {
    /// The largest file read, in bytes; a larger one is reported and never read.
    public var maxFileBytes: Int
    /// The largest total of bytes read from one repository.
    public var maxRepositoryBytes: Int
    /// The most files read from one repository.
    public var maxFiles: Int
    /// How deep collections may nest inside one document.
    public var maxDepth: Int
    /// How many values one file may expand to once aliases are followed.
    public var maxNodes: Int
    /// How many aliases (`*name`) one file may use.
    public var maxAliases: Int

    /// Creates limits; the defaults suit manifests and OpenAPI documents alike.
    public init(
        maxFileBytes: Int = 1 << 20, maxRepositoryBytes: Int = 1 << 30, maxFiles: Int = 500_000,
        maxDepth: Int = 64, maxNodes: Int = 200_000, maxAliases: Int = 100
    ) {
        self.maxFileBytes = maxFileBytes
        self.maxRepositoryBytes = maxRepositoryBytes
        self.maxFiles = maxFiles
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
        self.maxAliases = maxAliases
    }

    /// The limits `setu` uses unless told otherwise.
    public static let standard = LoadLimits()
}

/// One YAML document of a file, as a JSON value, with what it takes to turn
/// any JSON pointer back into a line and column.
public struct YAMLDocument: Sendable {
    /// The document's value.
    public let value: JSONValue
    /// Where the document starts.
    public let start: SourceLocation
    private let trees: ParseTrees
    private let index: Int

    init(value: JSONValue, root: Node) {
        self.value = value
        self.trees = ParseTrees(roots: [root])
        self.index = 0
        self.start = root.mark.map(SourceLocation.init) ?? .start
    }

    /// A document read from events: the file's parse trees, shared by its
    /// documents, are built only if a location is asked for.
    init(value: JSONValue, start: SourceLocation, trees: ParseTrees, index: Int) {
        self.value = value
        self.start = start
        self.trees = trees
        self.index = index
    }

    /// The location of the value at `pointer`. For a member of a mapping that is
    /// where its key is written; for a missing value, the nearest enclosing one.
    public func location(of pointer: JSONPointer) -> SourceLocation {
        guard var node = trees.root(index) else { return start }
        var location = start
        for token in pointer.tokens {
            switch node {
            case .mapping(let mapping):
                guard let pair = mapping.first(where: { $0.key.scalar?.string == token }) else { return location }
                location = pair.key.mark.map(SourceLocation.init) ?? location
                node = pair.value
            case .sequence(let sequence):
                guard let index = Int(token), sequence.indices.contains(index) else { return location }
                node = sequence[index]
                location = node.mark.map(SourceLocation.init) ?? location
            default:
                return location
            }
        }
        return location
    }
}

/// Holds a file's Yams parse trees, one per document, never mutated once built:
/// given, or built from the source on first use (most files never need them).
// @unchecked: `built` is touched only under `lock`; Yams' nodes are not Sendable, but never change once built.
final class ParseTrees: @unchecked Sendable {
    private let lock = NSLock()
    private var built: [Node]?
    private let source: [UInt8]

    init(roots: [Node]) {
        built = roots
        source = []
    }

    init(source: [UInt8]) {
        self.source = source
    }

    /// The tree of the document at `index`, counting empty documents too.
    func root(_ index: Int) -> Node? {
        lock.lock()
        defer { lock.unlock() }
        if built == nil {
            var documents: [Node] = []
            if let parser = try? Parser(yaml: String(decoding: source, as: UTF8.self), resolver: .basic, constructor: .default, encoding: .utf8) {
                while let root = try? parser.nextRoot() { documents.append(root) }
            }
            built = documents
        }
        return built!.indices.contains(index) ? built![index] : nil
    }
}

extension SourceLocation {
    init(_ mark: Mark) {
        self.init(line: mark.line, column: mark.column)
    }
}

/// Turns the bytes of a YAML file into documents, or into the one diagnostic
/// that explains why it cannot be read.
///
/// YAML is read with Yams, with the YAML 1.2 core schema applied by Setu
/// (so `no` and `on` stay strings and dates stay strings) and with limits
/// on size, nesting and aliases checked before any value is built.
public enum YAMLLoader {
    /// Loads every document in `bytes`, or returns the diagnostic for the first
    /// thing that stops the file from being read (rule ids `yaml.*`).
    public static func load(_ bytes: [UInt8], file: String, limits: LoadLimits = .standard) -> Result<[YAMLDocument], Diagnostic> {
        guard bytes.count <= limits.maxFileBytes else {
            return .failure(
                Diagnostic(
                    file: file, rule: .fileTooLarge,
                    message: "file is \(bytes.count) bytes, over the limit of \(limits.maxFileBytes) bytes",
                    fix: "split it into smaller files"))
        }
        if let offset = firstInvalidUTF8(bytes) {
            return .failure(
                Diagnostic(
                    file: file, location: location(ofByte: offset, in: bytes), rule: .yamlUtf8,
                    message: "invalid UTF-8 byte 0x\(String(bytes[offset], radix: 16, uppercase: true))",
                    fix: "save the file as UTF-8"))
        }
        if let problem = AliasScan.check(bytes, limits: limits) {
            return .failure(
                Diagnostic(
                    file: file, location: problem.location, rule: .yamlAliases, message: problem.message,
                    fix: "write the values out instead of using anchors and aliases"))
        }
        if let documents = YAMLEvents.load(bytes, limits: limits) {
            let trees = ParseTrees(source: bytes)
            return .success(
                documents.enumerated().map { index, document in
                    YAMLDocument(value: document.value, start: document.start, trees: trees, index: index)
                })
        }
        return loadParseTrees(bytes, file: file, limits: limits)
    }

    /// Loading the full way, through Yams' parse trees: every YAML feature, and
    /// a precise diagnostic for anything that stops the file from being read.
    static func loadParseTrees(_ bytes: [UInt8], file: String, limits: LoadLimits) -> Result<[YAMLDocument], Diagnostic> {
        let text = String(decoding: bytes, as: UTF8.self)
        var documents: [YAMLDocument] = []
        do {
            let parser = try Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
            var budget = limits.maxNodes
            while let root = try parser.nextRoot() {
                let value = try convert(root, depth: 0, limits: limits, budget: &budget)
                documents.append(YAMLDocument(value: value, root: root))
            }
        } catch let problem as LoadProblem {
            return .failure(Diagnostic(file: file, location: problem.location, rule: problem.rule, message: problem.message, fix: problem.fix))
        } catch let error as YamlError {
            return .failure(diagnostic(for: error, file: file, bytes: bytes))
        } catch {
            return .failure(Diagnostic(file: file, rule: .yamlSyntax, message: "\(error)"))
        }
        return .success(documents)
    }

    // MARK: - Conversion

    private struct LoadProblem: Error {
        var location: SourceLocation
        var rule: RuleID
        var message: String
        var fix: String?
    }

    private static func convert(_ node: Node, depth: Int, limits: LoadLimits, budget: inout Int) throws -> JSONValue {
        budget -= 1
        let here = node.mark.map(SourceLocation.init) ?? .start
        if budget < 0 {
            throw LoadProblem(
                location: here, rule: .yamlAliases,
                message: "the file expands to more than \(limits.maxNodes) values once aliases are followed",
                fix: "write the values out instead of nesting aliases")
        }
        if depth > limits.maxDepth {
            throw LoadProblem(
                location: here, rule: .yamlDepth,
                message: "values nest deeper than \(limits.maxDepth) levels",
                fix: "flatten the structure")
        }
        switch node {
        case .scalar(let scalar):
            return try resolve(scalar, at: here)
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            elements.reserveCapacity(sequence.count)
            for element in sequence {
                elements.append(try convert(element, depth: depth + 1, limits: limits, budget: &budget))
            }
            return .array(elements)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(mapping.count)
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw LoadProblem(
                        location: key.mark.map(SourceLocation.init) ?? here, rule: .yamlKey,
                        message: "mapping keys must be plain values, not lists or mappings",
                        fix: "use a string as the key")
                }
                members[keyScalar.string] = try convert(value, depth: depth + 1, limits: limits, budget: &budget)
            }
            return .object(members)
        case .alias:
            throw LoadProblem(location: here, rule: .yamlAliases, message: "unresolved alias")
        }
    }

    /// The YAML 1.2 core schema for plain scalars, written out rather than left to
    /// Yams' YAML 1.1 resolver: in 1.1 `no`, `off` and `2027-06-30` are not strings,
    /// and its regular expressions cost more than the rest of loading together.
    private static func resolve(_ scalar: Node.Scalar, at location: SourceLocation) throws -> JSONValue {
        let text = scalar.string
        let tag = scalar.tag.rawValue
        switch tag {
        case "", "!", Tag.Name.str.rawValue:
            break
        case Tag.Name.null.rawValue:
            return .null
        case Tag.Name.bool.rawValue, Tag.Name.int.rawValue, Tag.Name.float.rawValue:
            if let value = coreValue(text), value != .null { return value }
            throw LoadProblem(location: location, rule: .yamlTag, message: "'\(text)' is not a valid \(tag)")
        default:
            throw LoadProblem(
                location: location, rule: .yamlTag, message: "unsupported tag \(tag)",
                fix: "remove the tag; manifests use plain YAML values")
        }
        guard scalar.style == .plain || scalar.style == .any else { return .string(text) }
        return coreValue(text) ?? .string(text)
    }

    /// The value a plain scalar denotes in the YAML 1.2 core schema, or `nil` for a string.
    static func coreValue(_ text: String) -> JSONValue? {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .number(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
        case ".nan", ".NaN", ".NAN": return .number(.nan)
        default: break
        }
        let utf8 = text.utf8
        guard let first = utf8.first,
            first == UInt8(ascii: "-") || first == UInt8(ascii: "+")
                || first == UInt8(ascii: ".") || (first >= 48 && first <= 57)
        else { return nil }
        if text.hasPrefix("0x"), let value = Int64(text.dropFirst(2), radix: 16) { return .number(Double(value)) }
        if text.hasPrefix("0o"), let value = Int64(text.dropFirst(2), radix: 8) { return .number(Double(value)) }
        guard isCoreNumber(utf8) else { return nil }
        return Double(text).map(JSONValue.number)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    private static func isCoreNumber(_ utf8: String.UTF8View) -> Bool {
        var bytes = utf8[...]
        func digits() -> Int {
            let count = bytes.prefix(while: { $0 >= 48 && $0 <= 57 }).count
            bytes = bytes.dropFirst(count)
            return count
        }
        if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        let whole = digits()
        var fraction = 0
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            fraction = digits()
            if whole == 0 && fraction == 0 { return false }
        } else if whole == 0 {
            return false
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
            if digits() == 0 { return false }
        }
        return bytes.isEmpty
    }

    // MARK: - Errors from libyaml

    private static func diagnostic(for error: YamlError, file: String, bytes: [UInt8]) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let location = SourceLocation(mark)
            var message = problem
            if let context, !context.text.isEmpty { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            let nesting = problem.contains("Maximum nesting level")
            return Diagnostic(
                file: file, location: location, rule: nesting ? .yamlDepth : .yamlSyntax,
                message: nesting ? "values nest too deeply for the YAML parser" : message,
                fix: nesting ? "flatten the structure" : "fix the YAML syntax at this point")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return Diagnostic(
                file: file, location: SourceLocation(context.mark), rule: .yamlDuplicateKey,
                message: "the mapping has the key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) more than once",
                fix: "keep one of them")
        case .reader(let problem, let offset, _, _):
            return Diagnostic(
                file: file, location: offset.map { location(ofByte: $0, in: bytes) } ?? .start,
                rule: .yamlSyntax, message: problem, fix: "remove the character")
        default:
            return Diagnostic(file: file, rule: .yamlSyntax, message: "\(error)")
        }
    }

    // MARK: - Bytes

    /// The offset of the first byte that is not part of valid UTF-8, if any.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 { index += 1; continue }
            let length: Int
            var minimum: UInt32
            var scalar: UInt32
            switch lead {
            case 0xC2...0xDF: length = 2; minimum = 0x80; scalar = UInt32(lead & 0x1F)
            case 0xE0...0xEF: length = 3; minimum = 0x800; scalar = UInt32(lead & 0x0F)
            case 0xF0...0xF4: length = 4; minimum = 0x10000; scalar = UInt32(lead & 0x07)
            default: return index
            }
            guard index + length <= count else { return index }
            for offset in 1..<length {
                let next = bytes[index + offset]
                guard next & 0xC0 == 0x80 else { return index }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return index }
            index += length
        }
        return nil
    }

    /// Line and column (in Unicode scalars) of a byte offset.
    static func location(ofByte offset: Int, in bytes: [UInt8]) -> SourceLocation {
        var line = 1
        var column = 1
        for byte in bytes[..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(line: line, column: column)
    }
}

/// A quick look at a file's aliases before a parser expands any of them.
///
/// Yams expands aliases while it builds its tree and hashes mapping keys to find
/// duplicates, so a "billion laughs" alias used as a key would be hashed a
/// billion times before Setu saw the tree. This scan finds alias tokens (`*name`
/// where a YAML value may start, outside quotes and comments) and refuses a file
/// with too many of them, or with one used as, or inside, a mapping key.
enum AliasScan {
    struct Finding {
        var location: SourceLocation
        var message: String
    }

    static func check(_ bytes: [UInt8], limits: LoadLimits) -> Finding? {
        // Fast path: no asterisk, no alias.
        guard bytes.contains(UInt8(ascii: "*")) else { return nil }
        var aliases = 0
        var hasComplexKeys = false
        var firstAlias: SourceLocation?
        var line = 1
        var lineStart = 0
        var index = 0
        var quote: UInt8? = nil
        var previousSignificant: UInt8 = UInt8(ascii: "\n")
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), newline = UInt8(ascii: "\n")
        while index < bytes.count {
            let byte = bytes[index]
            if byte == newline {
                line += 1
                lineStart = index + 1
                previousSignificant = newline
                index += 1
                continue
            }
            if let open = quote {
                if byte == open { quote = nil }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                if tokenBoundary(previousSignificant, bytes, index) { quote = byte }
            case UInt8(ascii: "#"):
                if index == lineStart || bytes[index - 1] == space || bytes[index - 1] == tab {
                    while index < bytes.count && bytes[index] != newline { index += 1 }
                    continue
                }
            case UInt8(ascii: "*"):
                if tokenBoundary(previousSignificant, bytes, index) {
                    aliases += 1
                    let location = SourceLocation(line: line, column: index - lineStart + 1)
                    if firstAlias == nil { firstAlias = location }
                    if aliases > limits.maxAliases {
                        return Finding(location: location, message: "the file uses more than \(limits.maxAliases) aliases")
                    }
                    var end = index + 1
                    while end < bytes.count, !isTerminator(bytes[end]) { end += 1 }
                    var after = end
                    while after < bytes.count, bytes[after] == space || bytes[after] == tab { after += 1 }
                    if after < bytes.count, bytes[after] == UInt8(ascii: ":"),
                        after + 1 == bytes.count || [space, tab, newline, UInt8(ascii: "\r")].contains(bytes[after + 1])
                    {
                        return Finding(location: location, message: "an alias is used as a mapping key")
                    }
                }
            case UInt8(ascii: "?"):
                if tokenBoundary(previousSignificant, bytes, index),
                    index + 1 == bytes.count || bytes[index + 1] == space || bytes[index + 1] == newline
                {
                    hasComplexKeys = true
                }
            case UInt8(ascii: ":"):
                if previousSignificant == UInt8(ascii: "]") || previousSignificant == UInt8(ascii: "}") {
                    hasComplexKeys = true
                }
            default:
                break
            }
            if byte != space && byte != tab { previousSignificant = byte }
            index += 1
        }
        if hasComplexKeys, let firstAlias {
            return Finding(location: firstAlias, message: "aliases cannot be combined with complex mapping keys")
        }
        return nil
    }

    /// Whether position `index` starts a YAML token: at the start of a line's
    /// content, or after an indicator that a value may follow.
    private static func tokenBoundary(_ previous: UInt8, _ bytes: [UInt8], _ index: Int) -> Bool {
        switch previous {
        case UInt8(ascii: "\n"), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","):
            return true
        case UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "?"):
            // The indicator counts only when whitespace separates it from this token.
            return index > 0 && (bytes[index - 1] == UInt8(ascii: " ") || bytes[index - 1] == UInt8(ascii: "\t"))
        default:
            return false
        }
    }

    private static func isTerminator(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
            UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }
}
