import Foundation
import SetuManifest
import SetuTestSupport
import Testing

/// The real API Setu OpenAPI documents in `../shared/apisetu-specs/`, when present.
let apisetuSpecs: [String] = {
    let folder = sharedFolder.appendingPathComponent("apisetu-specs").path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.hasSuffix(".openapi.yaml") }.sorted()
}()

struct OpenAPITests {
    /// operationIds of each real document, as the API Setu listing has them.
    static let expectedOperations: [String: [String]] = [
        "pan.openapi.yaml": ["pancr"],
        "dgft.openapi.yaml": ["Importer-Exporter Code Verification API"],
        "licindia.openapi.yaml": ["podoc"],
    ]

    @Test("every real API Setu document parses, with its operations", arguments: apisetuSpecs)
    func realDocument(_ name: String) throws {
        let path = sharedFolder.appendingPathComponent("apisetu-specs/\(name)").path
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let loaded = try YAMLLoader.load(bytes, file: name).get()
        let document = try OpenAPIDocument(loaded[0].value)
        #expect(document.version.hasPrefix("3."))
        #expect(!document.title.isEmpty)
        #expect(!document.operations.isEmpty)
        #expect(document.operations.allSatisfy { $0.operationId != nil && $0.path.hasPrefix("/") && ["GET", "POST"].contains($0.method) })
        if let expected = Self.expectedOperations[name] {
            #expect(document.operations.compactMap(\.operationId) == expected)
        }
    }

    @Test func cbseOperationsInPathOrder() throws {
        let path = projectRoot.appendingPathComponent("Tests/Fixtures/apisetu/cbse.openapi.yaml").path
        let loaded = try YAMLLoader.load([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), file: "cbse").get()
        let document = try OpenAPIDocument(loaded[0].value)
        #expect(document.operations.count == 16)
        let first = try #require(document.operations.first)
        #expect([first.method, first.path, first.operationId, first.summary] == ["POST", "/hpcer/certificate", "hpcer", "Class XII Passing Certificate"])
        // What the gateway checks requests against: the JSON body's schema, by pointer into
        // the document in JSON Schema form, and the consent artifact it carries.
        #expect(
            first.request.body == [.init(name: "application/json", schema: "/paths/~1hpcer~1certificate/post/requestBody/content/application~1json/schema")])
        #expect(first.request.carriesConsentArtifact)
        #expect(first.request.parameters.isEmpty && !first.request.bodyRequired)
        #expect(document.servers == ["https://apisetu.gov.in/cbse/v3"])
    }

    @Test func openAPI30SchemasAreRewrittenAsJSONSchema202012() throws {
        let schema: JSONValue = .object([
            "type": .string("object"),
            "properties": .object([
                "note": .object(["type": .string("string"), "nullable": .bool(true), "enum": .array([.string("a")])]),
                "price": .object(["type": .string("number"), "minimum": .number(0), "exclusiveMinimum": .bool(true)]),
                "count": .object(["type": .string("integer"), "maximum": .number(9), "exclusiveMaximum": .bool(false)]),
                "item": .object(["$ref": .string("#/components/schemas/Item"), "description": .string("ignored in 3.0")]),
            ]),
        ])
        let converted = OpenAPISchemaDialect.convert(schema, openapiVersion: "3.0.3")
        #expect(
            converted["properties"]?["note"]
                == .object([
                    "type": .array([.string("string"), .string("null")]),
                    "enum": .array([.string("a"), .null]),
                ]))
        #expect(converted["properties"]?["price"] == .object(["type": .string("number"), "exclusiveMinimum": .number(0)]))
        #expect(converted["properties"]?["count"] == .object(["type": .string("integer"), "maximum": .number(9)]))
        #expect(converted["properties"]?["item"] == .object(["$ref": .string("#/components/schemas/Item")]))
        #expect(OpenAPISchemaDialect.convert(schema, openapiVersion: "3.1.0") == schema)
    }

    @Test func swaggerTwoIsRefusedWithAPointer() throws {
        let value = try YAMLLoader.load(Array("swagger: '2.0'\ninfo: {title: x}\npaths: {}\n".utf8), file: "s").get()[0].value
        #expect(
            throws: OpenAPIDocument.ReadError(
                pointer: JSONPointer(), message: "is a Swagger 2 document; Setu needs OpenAPI 3 (convert it, e.g. with swagger2openapi)")
        ) {
            try OpenAPIDocument(value)
        }
    }
}
