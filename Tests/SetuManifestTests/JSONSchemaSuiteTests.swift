import Foundation
import Testing

@testable import SetuManifest

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12) from `../shared/`
/// whenever that folder exists beside the project.
struct JSONSchemaSuiteTests {
    static let suite = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/json-schema-test-suite/draft2020-12")

    /// Keyword files the validator passes in full, apart from groups that need a
    /// document the suite keeps in its `remotes/` folder, which is not shipped here.
    static let supported = [
        "additionalProperties", "allOf", "anchor", "anyOf", "boolean_schema", "const", "contains",
        "content", "default", "dependentRequired", "dependentSchemas", "enum", "exclusiveMaximum",
        "exclusiveMinimum", "format", "if-then-else", "infinite-loop-detection", "items", "maxContains",
        "maxItems", "maxLength", "maxProperties", "maximum", "minContains", "minItems", "minLength",
        "minProperties", "minimum", "multipleOf", "not", "oneOf", "pattern", "patternProperties",
        "prefixItems", "properties", "propertyNames", "ref", "required", "type", "uniqueItems",
    ]

    /// Keyword files left out, and why.
    static let unsupported = [
        "defs": "validates schemas against the draft's meta-schema, which needs the suite's remotes",
        "dynamicRef": "$dynamicRef is not supported",
        "refRemote": "needs the suite's remotes served over HTTP",
        "unevaluatedItems": "unevaluatedItems is not supported",
        "unevaluatedProperties": "unevaluatedProperties is not supported",
        "vocabulary": "needs custom meta-schemas from the suite's remotes",
    ]

    struct Case: Decodable {
        var description: String
        var data: JSONValue
        var valid: Bool
    }

    struct Group: Decodable {
        var description: String
        var schema: JSONValue
        var tests: [Case]
    }

    @Test("every suite file is either run or listed as unsupported")
    func everyFileIsAccountedFor() throws {
        guard FileManager.default.fileExists(atPath: Self.suite.path) else { return }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.suite.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        let accounted = Set(Self.supported).union(Self.unsupported.keys)
        #expect(Set(files).subtracting(accounted).isEmpty)
        print(
            "JSON-Schema-Test-Suite keywords not supported: "
                + Self.unsupported.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; "))
    }

    @Test("official suite", arguments: supported)
    func keyword(_ name: String) throws {
        let url = Self.suite.appendingPathComponent(name + ".json")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let groups = try JSONDecoder().decode([Group].self, from: Data(contentsOf: url))
        var skipped: [String] = []
        for group in groups {
            let schema: JSONSchema
            do {
                schema = try JSONSchema(group.schema)
            } catch let error as ManifestError where error.code == .unresolvedReference {
                skipped.append(group.description + " (needs the suite's remotes)")
                continue
            } catch let error as ManifestError where error.code == .unsupportedKeyword {
                skipped.append(group.description + " (\(error.message))")
                continue
            }
            for test in group.tests {
                #expect(schema.isValid(test.data) == test.valid, "\(name): \(group.description): \(test.description): \(schema.violations(of: test.data))")
                #expect(schema.violations(of: test.data).isEmpty == test.valid, "\(name): \(group.description): \(test.description) (collecting)")
            }
        }
        if !skipped.isEmpty {
            print("\(name): groups skipped: \(skipped.joined(separator: "; "))")
        }
        #expect(skipped.count <= 3, "\(name): too many groups skipped")
    }
}
