import Foundation
import SetuTestSupport
import Testing

/// Requests checked against the API's OpenAPI document, on a running daemon: each kind of
/// invalid request is refused before the upstream, naming the parameter or JSON pointer.
extension DataPlaneTests {
    @Suite struct Validation {
        struct Plane {
            let upstream: RawUpstream
            let marketplace: EnforcementMarketplace
            let daemon: RunningDaemon
        }

        func start() async throws -> Plane {
            let upstream = try RawUpstream()
            let marketplace = try EnforcementMarketplace(upstreamPort: upstream.port)
            let daemon = try await RunningDaemon.start(repo: marketplace.path)
            return Plane(upstream: upstream, marketplace: marketplace, daemon: daemon)
        }

        func get(_ plane: Plane, _ target: String, region: String? = "IN") async throws -> Answer {
            try await call(
                plane.daemon.gateway + target, method: .GET,
                headers: EnforcementMarketplace.credentials + (region.map { [("X-Region", $0)] } ?? []))
        }

        func put(_ plane: Plane, _ target: String, _ body: String?, type: String? = "application/json") async throws -> Answer {
            try await call(
                plane.daemon.gateway + target, method: .PUT,
                headers: EnforcementMarketplace.credentials + (type.map { [("Content-Type", $0)] } ?? []), body: body)
        }

        func expectRefused(
            _ answer: Answer, status: Int = 400, type: String = "invalid-request", parameter: String? = nil,
            pointer: String? = nil, detail: String, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            #expect(answer.status == status, "\(answer.body)", sourceLocation: sourceLocation)
            #expect(answer.problemType == "urn:setu:problem:" + type, sourceLocation: sourceLocation)
            if let parameter { #expect(answer.problem["parameter"] as? String == parameter, "\(answer.body)", sourceLocation: sourceLocation) }
            if let pointer { #expect(answer.problem["pointer"] as? String == pointer, "\(answer.body)", sourceLocation: sourceLocation) }
            #expect(answer.detail.contains(detail), "\(answer.detail)", sourceLocation: sourceLocation)
        }

        @Test func parametersAreCheckedByTypeEnumPatternAndBounds() async throws {
            let plane = try await start()
            #expect(try await get(plane, "/items/items/7?view=full&limit=5&tags=red&tags=blue").status == 200)
            expectRefused(try await get(plane, "/items/items/0"), parameter: "path parameter 'id'", detail: "path parameter 'id'")
            expectRefused(try await get(plane, "/items/items/1001"), parameter: "path parameter 'id'", detail: "1000")
            expectRefused(try await get(plane, "/items/items/seven"), parameter: "path parameter 'id'", detail: "integer")
            expectRefused(try await get(plane, "/items/items/7?view=long"), parameter: "query parameter 'view'", detail: "short")
            // OpenAPI 3.0's boolean exclusiveMinimum.
            expectRefused(try await get(plane, "/items/items/7?limit=0"), parameter: "query parameter 'limit'", detail: "query parameter 'limit'")
            expectRefused(try await get(plane, "/items/items/7?limit=lots"), parameter: "query parameter 'limit'", detail: "integer")
            expectRefused(
                try await get(plane, "/items/items/7?tags=red&tags=Blue"), parameter: "query parameter 'tags' at /1",
                detail: "query parameter 'tags' at /1")
            expectRefused(
                try await get(plane, "/items/items/7?tags=a&tags=b&tags=c&tags=d"), parameter: "query parameter 'tags'",
                detail: "3")
            expectRefused(
                try await get(plane, "/items/items/7", region: nil), parameter: "header parameter 'X-Region'",
                detail: "is required but was not sent")
            expectRefused(
                try await get(plane, "/items/items/7", region: "india"), parameter: "header parameter 'X-Region'",
                detail: "header parameter 'X-Region'")
            #expect(try await get(plane, "/dgft/v1/iec/0123456789").status == 200, "the real DGFT document's path parameter")
            #expect(plane.upstream.requests.count == 2)
        }

        @Test func bodiesAreCheckedForMediaTypeJSONAndSchema() async throws {
            let plane = try await start()
            #expect(try await put(plane, "/items/items/7", #"{"name":"pen","price":2.5,"note":null}"#).status == 200)
            expectRefused(try await put(plane, "/items/items/7", "not json"), pointer: "", detail: "body is not valid JSON")
            expectRefused(
                try await put(plane, "/items/items/7", "name=pen", type: "application/x-www-form-urlencoded"),
                status: 415, type: "unsupported-media-type", detail: "application/json")
            expectRefused(
                try await put(plane, "/items/items/7", #"{"name":"pen"}"#, type: nil), status: 415, type: "unsupported-media-type",
                detail: "has no Content-Type")
            expectRefused(try await put(plane, "/items/items/7", nil, type: nil), pointer: "", detail: "body is required")
            // Valid JSON that breaks the schema: OpenAPI 3.0's boolean exclusiveMinimum, a $ref'd schema.
            expectRefused(try await put(plane, "/items/items/7", #"{"name":"pen","price":0}"#), pointer: "/price", detail: "body at /price")
            expectRefused(
                try await put(plane, "/items/items/7", #"{"name":"pen","price":1,"colour":"red"}"#), pointer: "/colour",
                detail: "body at /colour")
            expectRefused(try await put(plane, "/items/items/7", #"{"name":7,"price":1}"#), pointer: "/name", detail: "string")
            #expect(plane.upstream.requests.count == 1)
        }

        @Test func theRealCBSEDocumentChecksItsCertificateRequests() async throws {
            let plane = try await start()
            let valid =
                #"{"txnId":"f7f1469c-29b0-4325-9dfc-c567200a70f7","format":"pdf","certificateParameters":{"rollno":"1100040","year":"2016","FullName":"Sunil Kumar"}}"#
            let target = "/cbse/v3/hscer/certificate"
            let post = { (body: String) in
                try await call(
                    plane.daemon.gateway + target, headers: EnforcementMarketplace.credentials + [("Content-Type", "application/json")],
                    body: body)
            }
            #expect(try await post(valid).status == 200)
            expectRefused(
                try await post(valid.replacingOccurrences(of: #""format":"pdf","#, with: "")), pointer: "",
                detail: "format")
            expectRefused(
                try await post(valid.replacingOccurrences(of: #""pdf""#, with: #""doc""#)), pointer: "/format",
                detail: "body at /format")
            expectRefused(
                try await post(valid.replacingOccurrences(of: #""year":"2016","#, with: "")), pointer: "/certificateParameters",
                detail: "year")
            // The same check on a chunked body.
            let client = try RawClient(port: plane.daemon.gatewayPort)
            let chunked = valid.replacingOccurrences(of: #""pdf""#, with: #""doc""#)
            client.send(
                "POST \(target) HTTP/1.1\r\nHost: gw.example\r\n\(DataPlaneMarketplace.credentials)Content-Type: application/json\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n\(String(chunked.utf8.count, radix: 16))\r\n\(chunked)\r\n0\r\n\r\n")
            let answer = try #require(client.response(within: 10))
            #expect(answer.status == 400)
            #expect(answer.detail.contains("body at /format"))
            #expect(plane.upstream.requests.count == 1)
        }

        @Test func reportModePassesTheRequestOnAndLogsTheFailure() async throws {
            let plane = try await start()
            let answer = try await put(plane, "/reported/items/7", "not json")
            #expect(answer.status == 200)
            #expect(plane.upstream.requests.count == 1)
            try await Task.sleep(for: .milliseconds(300))
            let hit = try #require(try hitLines(in: plane.daemon.hitDirectory).last)
            #expect(hit["decision"] as? String == "allow")
            #expect((hit["validation"] as? String)?.hasPrefix("body: is not valid JSON") == true, "\(hit)")
        }

        @Test func aCheckedBodyOverItsLimitIs413() async throws {
            let upstream = try RawUpstream()
            let marketplace = try EnforcementMarketplace(upstreamPort: upstream.port)
            let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: ["--max-checked-body-bytes", "100"])
            let body = #"{"name":"\#(String(repeating: "p", count: 200))","price":1}"#
            let answer = try await call(
                daemon.gateway + "/items/items/7", method: .PUT,
                headers: EnforcementMarketplace.credentials + [("Content-Type", "application/json")], body: body)
            #expect(answer.status == 413)
            #expect(answer.detail.contains("100 bytes the gateway reads to check a body"))
            #expect(upstream.requests.isEmpty)
        }
    }
}
