import AsyncHTTPClient
import Foundation
import SetuTestSupport
import Testing

/// The portal on the public listener: pages from the snapshot in force, beside the APIs.
@Suite(.serialized) struct PortalLiveTests {
    @Test func thePortalAnswersUnderItsReservedPathAndEachViewIsAHit() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let catalog = try await call(daemon.gateway + "/-/catalog.json", method: .GET)
        #expect(catalog.status == 200)
        #expect(catalog.headers["Content-Type"].first == "application/json")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(catalog.body.utf8)) as? [[String: Any]])
        #expect(entries.contains { $0["id"] as? String == "incometax/pan-verification" })
        let filtered = try await call(daemon.gateway + "/-/catalog.json?type=listing", method: .GET)
        let listings = try #require(try JSONSerialization.jsonObject(with: Data(filtered.body.utf8)) as? [[String: Any]])
        #expect(!listings.isEmpty && listings.allSatisfy { $0["type"] as? String == "listing" })

        let page = try await call(daemon.gateway + "/-/apis/incometax/pan-verification", method: .GET)
        #expect(page.status == 200)
        #expect(page.headers["Content-Type"].first == "text/html; charset=utf-8")
        #expect(page.body.contains("api: incometax/pan-verification"))
        let missing = try await call(daemon.gateway + "/-/apis/nobody/nothing", method: .GET)
        #expect(missing.status == 404)
        #expect(missing.body.contains("There is no API nobody/nothing in force."))
        let posted = try await call(daemon.gateway + "/-/")
        #expect(posted.status == 405)
        #expect(posted.problemType?.hasSuffix("method-not-allowed") == true)
        // The APIs are served as before, beside it.
        #expect(try await call(daemon.gateway + "/pan/v3/pancr/certificate", headers: credentials("acme-bank-prod"), body: "{}").status == 200)

        #expect(daemon.stop() == 0)
        let hits = try hitLines(in: daemon.hitDirectory)
        let views = hits.filter { ($0["path"] as? String)?.hasPrefix("/-/") == true }
        #expect(views.count == 5)
        #expect(views.map { $0["status"] as? Int } == [200, 200, 200, 404, 405])
        #expect(views.allSatisfy { $0["api"] is NSNull && $0["consumer"] is NSNull })
        #expect(views.first?["decision"] as? String == "allow")
        await upstream.stop()
    }
}
