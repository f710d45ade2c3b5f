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
        let path = sharedFolder.appendingPathComponent("apisetu-specs/cbse.openapi.yaml").path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let loaded = try YAMLLoader.load([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), file: "cbse").get()
        let document = try OpenAPIDocument(loaded[0].value)
        #expect(document.operations.count == 16)
        #expect(document.operations.first == Operation(method: "POST", path: "/hpcer/certificate", operationId: "hpcer", summary: "Class XII Passing Certificate"))
        #expect(document.servers == ["https://apisetu.gov.in/cbse/v3"])
    }

    @Test func swaggerTwoIsRefusedWithAPointer() throws {
        let value = try YAMLLoader.load(Array("swagger: '2.0'\ninfo: {title: x}\npaths: {}\n".utf8), file: "s").get()[0].value
        #expect(throws: OpenAPIDocument.Problem(pointer: JSONPointer(), message: "is a Swagger 2 document; Setu needs OpenAPI 3 (convert it, e.g. with swagger2openapi)")) {
            try OpenAPIDocument(value)
        }
    }
}
