import Foundation
import SetuTestSupport

/// A marketplace for the enforcement stages' tests, in front of one `RawUpstream`:
/// - `cbse/marksheet` at `/cbse/v3`, a document API described by API Setu's real CBSE
///   document, whose consent setting the test chooses;
/// - `lab/items` at `/items`, described by a small OpenAPI 3.0 document with path, query
///   and header parameters and a JSON body; `lab/reported`, the same document under
///   `validation: report`, at `/reported`;
/// - `lab/importers` at `/dgft`, described by API Setu's real DGFT document;
/// - the offline consumer `tester` subscribed to all of them on an unlimited plan.
final class EnforcementMarketplace: @unchecked Sendable {
    static let clientId = DataPlaneMarketplace.clientId
    static let key = DataPlaneMarketplace.key
    static var credentials: [(String, String)] { [("X-APISETU-CLIENTID", clientId), ("X-APISETU-APIKEY", key)] }
    static let apisetu = projectRoot.appendingPathComponent("Tests/Fixtures/apisetu")

    static let itemsDocument = """
        openapi: 3.0.3
        info: {title: Items, version: "1.0"}
        paths:
          /items/{id}:
            parameters:
              - {name: id, in: path, required: true, schema: {type: integer, minimum: 1, maximum: 1000}}
            get:
              operationId: getItem
              parameters:
                - {name: view, in: query, schema: {type: string, enum: [short, full]}}
                - {name: limit, in: query, schema: {type: integer, minimum: 0, exclusiveMinimum: true, maximum: 50}}
                - {name: tags, in: query, schema: {type: array, maxItems: 3, items: {type: string, pattern: "^[a-z]+$"}}}
                - {name: X-Region, in: header, required: true, schema: {type: string, pattern: "^[A-Z]{2}$"}}
              responses: {"200": {description: The item.}}
            put:
              operationId: putItem
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/Item"}
              responses: {"200": {description: Stored.}}
        components:
          schemas:
            Item:
              type: object
              required: [name, price]
              additionalProperties: false
              properties:
                name: {type: string, minLength: 1}
                price: {type: number, minimum: 0, exclusiveMinimum: true}
                note: {type: string, nullable: true}

        """

    let fixture: GitFixture
    var path: String { fixture.path }

    init(upstreamPort port: Int, consent: String = "none", extraPolicies: String = "", partner: String? = nil) throws {
        fixture = try GitFixture()
        try fixture.write("policies/platform.yaml", TestManifests.platform("enforcement"))
        try fixture.write(
            "policies/plans.yaml",
            """
            apiVersion: setu/v1
            kind: Plan
            metadata: {name: open}
            spec:
              displayName: Open
              rateLimit: {requests: 100000, per: second}

            """)
        if !extraPolicies.isEmpty { try fixture.write("policies/consent-providers.yaml", extraPolicies) }
        for (publisher, type) in [("cbse", "document"), ("lab", "service")] {
            try fixture.write("catalog/\(publisher)/publisher.yaml", TestManifests.publisher(publisher, type: type))
        }
        try fixture.write(
            "catalog/cbse/cbse.openapi.yaml",
            String(contentsOf: Self.apisetu.appendingPathComponent("cbse.openapi.yaml"), encoding: .utf8))
        try fixture.write(
            "catalog/lab/dgft.openapi.yaml",
            String(contentsOf: Self.apisetu.appendingPathComponent("dgft.openapi.yaml"), encoding: .utf8))
        try fixture.write("catalog/lab/items.openapi.yaml", Self.itemsDocument)
        let apis = [
            ("cbse", "marksheet", "/cbse/v3", "cbse.openapi.yaml", "consent: \(consent)"),
            ("lab", "items", "/items", "items.openapi.yaml", ""),
            ("lab", "reported", "/reported", "items.openapi.yaml", "validation: report"),
            ("lab", "importers", "/dgft", "dgft.openapi.yaml", ""),
        ]
        for (publisher, name, basePath, document, extra) in apis {
            try fixture.write(
                "catalog/\(publisher)/\(name).yaml",
                TestManifests.api(
                    name, basePath: basePath, upstream: "http://127.0.0.1:\(port)\(basePath)", plan: "open",
                    version: "3.0.0", extra: ["openapi: \(document)"] + (extra.isEmpty ? [] : [extra])))
            for consumer in ["tester"] + (partner == nil ? [] : ["partner"]) {
                try fixture.write(
                    "subscriptions/\(consumer)/\(publisher)-\(name).yaml",
                    TestManifests.subscription("\(publisher)-\(name)", api: "\(publisher)/\(name)", plan: "open"))
            }
        }
        try fixture.write("subscriptions/tester/consumer.yaml", TestManifests.tester)
        if let partner { try fixture.write("subscriptions/partner/consumer.yaml", partner) }
        try fixture.commitAll("An enforcing marketplace")
    }
}
