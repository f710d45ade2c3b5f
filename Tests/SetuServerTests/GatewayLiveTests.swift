import AsyncHTTPClient
import Foundation
import SetuTestSupport
import Testing

/// The gateway's pipeline against a real daemon, a real repository and a real upstream.
@Suite(.serialized) struct GatewayLiveTests {
    let pan = "/pan/v3/pancr/certificate"
    let panBody = #"{"txnId":"f7f1469c","format":"xml","certificateParameters":{"panno":"ABCDE1234F","PANFullName":"R K SINGH","DOB":"31-12-1980"}}"#

    @Test func anAllowedCallReachesTheUpstreamWithTheGatewaysHeadersOnly() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let answer = try await call(
            daemon.gateway + pan + "?trace=secret-query",
            headers: credentials("acme-bank-prod") + [
                ("Content-Type", "application/json"), ("X-Request-ID", "client-req-42"), ("X-Setu-Consumer", "someone-else"),
                ("X-Setu-Admin", "yes"), ("Proxy-Authorization", "Basic c2VjcmV0"), ("Authorization", "Bearer token"),
                ("Forwarded", "for=203.0.113.9"), ("X-Custom", "kept"),
            ], body: panBody)
        #expect(answer.status == 200)
        #expect(answer.body == #"{"upstream":"ok","path":"/tax/v3/pancr/certificate?trace=secret-query"}"#)
        #expect(answer.headers["X-Request-ID"] == ["client-req-42"])
        let seen = try #require(upstream.requests.last)
        #expect(seen.method == "POST")
        #expect(seen.path == "/tax/v3/pancr/certificate?trace=secret-query")
        #expect(seen.body == panBody)
        #expect(seen.header("X-Setu-Consumer") == "acme-bank")
        #expect(seen.header("X-Setu-Subscription") == "acme-bank/pan-verification")
        #expect(seen.header("X-Request-ID") == "client-req-42")
        #expect(seen.header("Forwarded") == "for=127.0.0.1;host=\"127.0.0.1:\(daemon.gatewayPort)\";proto=http")
        #expect(seen.header("X-Custom") == "kept")
        for stripped in ["X-APISETU-CLIENTID", "X-APISETU-APIKEY", "X-Setu-Admin", "Proxy-Authorization", "Authorization"] {
            #expect(seen.header(stripped) == nil, "\(stripped) reached the upstream")
        }
        #expect(seen.headers.filter { $0.0.lowercased() == "x-setu-consumer" }.count == 1)
        #expect(daemon.stop() == 0)
        let hit = try #require(try hitLines(in: daemon.hitDirectory).first)
        #expect(hit["path"] as? String == pan)
        #expect(hit["request_id"] as? String == "client-req-42")
        #expect(hit["decision"] as? String == "allow")
        #expect(hit["operation"] as? String == "pancr")
        #expect(hit["bytes_in"] as? Int == panBody.utf8.count)
        #expect(hit["bytes_out"] as? Int == answer.body.utf8.count)
        let file = try String(contentsOfFile: daemon.hitDirectory + "/" + HitFileNameList.first(in: daemon.hitDirectory), encoding: .utf8)
        #expect(!file.contains("acme-live-key") && !file.contains("secret-query") && !file.contains("Bearer"))
        await upstream.stop()
    }

    @Test func everyRefusalIsAProblemWithAStableTypeAndADetailThatSaysWhatToDo() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let json = [("Content-Type", "application/json")]

        let missing = try await call(daemon.gateway + pan, headers: json, body: panBody)
        #expect(missing.status == 401)
        #expect(missing.problemType == "urn:setu:problem:missing-credentials")
        #expect(missing.headers["Content-Type"] == ["application/problem+json"])
        #expect(missing.headers["WWW-Authenticate"].first?.hasPrefix("APISetu-Key") == true)

        let onlyId = try await call(daemon.gateway + pan, headers: [("X-APISETU-CLIENTID", "acme-bank-prod")] + json, body: panBody)
        #expect(onlyId.status == 401)
        #expect(onlyId.problemType == "urn:setu:problem:missing-credentials")

        let wrongKey = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod", key: "not-the-key") + json, body: panBody)
        #expect(wrongKey.status == 401)
        #expect(wrongKey.problemType == "urn:setu:problem:invalid-credentials")

        let unknownClient = try await call(daemon.gateway + pan, headers: credentials("nobody", key: "x") + json, body: panBody)
        #expect(unknownClient.status == 401)
        #expect(unknownClient.problemType == "urn:setu:problem:invalid-credentials")

        let expired = try await call(daemon.gateway + pan, headers: credentials("acme-bank-old") + json, body: panBody)
        #expect(expired.status == 401)
        #expect(expired.problemType == "urn:setu:problem:credential-expired")
        #expect(
            expired.detail
                == "Credential acme-bank-old was valid until 2025-01-01. Make a new key with `setu keygen` and commit its hash in your consumer.yaml.")

        let notSubscribed = try await call(daemon.gateway + pan, headers: credentials("swift-loans-prod") + json, body: panBody)
        #expect(notSubscribed.status == 403)
        #expect(notSubscribed.problemType == "urn:setu:problem:not-subscribed")
        #expect(notSubscribed.detail.hasPrefix("swift-loans has no subscription to incometax/pan-verification."))

        let pending = try await call(
            daemon.gateway + "/transport/v3/vehicle/rvcer/certificate",
            headers: credentials("swift-loans-prod") + json, body: "{}")
        #expect(pending.status == 403)
        #expect(pending.problemType == "urn:setu:problem:pending-approval")
        #expect(
            pending.detail
                == "subscription swift-loans/vehicle-registration is waiting for an approver of transport to merge it (approvers: jointsecretary@parivahan.example)"
        )

        let outsideOperations = try await call(
            daemon.gateway + "/cbse/v3/class-xii/hpcer/certificate",
            headers: credentials("acme-bank-prod") + json, body: "{}")
        #expect(outsideOperations.status == 403)
        #expect(outsideOperations.problemType == "urn:setu:problem:operation-not-subscribed")
        #expect(outsideOperations.detail.hasPrefix("subscription acme-bank/cbse-class-xii-marksheet allows hscer, not hpcer."))

        let inside = try await call(
            daemon.gateway + "/cbse/v3/class-xii/hscer/certificate",
            headers: credentials("acme-bank-prod") + json, body: "{}")
        #expect(inside.status == 200)

        let unknown = try await call(daemon.gateway + "/nothing/here", headers: credentials("acme-bank-prod"))
        #expect(unknown.status == 404)
        #expect(unknown.problemType == "urn:setu:problem:no-route")

        let noOperation = try await call(daemon.gateway + "/pan/v3/nope", headers: credentials("acme-bank-prod"))
        #expect(noOperation.status == 404)
        #expect(noOperation.problemType == "urn:setu:problem:no-operation")

        let wrongMethod = try await call(daemon.gateway + pan, method: .GET, headers: credentials("acme-bank-prod"))
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers["Allow"] == ["POST"])

        let listing = try await call(daemon.gateway + "/datagov/mandi-prices/today", method: .GET, headers: credentials("acme-bank-prod"))
        #expect(listing.status == 404)
        #expect(listing.problemType == "urn:setu:problem:listing-api")
        #expect(
            listing.detail
                == "datagov/mandi-prices (Daily Mandi Prices) is a listing API: it is listed for information only and the gateway never proxies it; its data is published at https://data.gov.example/catalog/mandi-prices."
        )

        let dotted = try await call(daemon.gateway + "/pan/v3/../../cbse/v3/class-xii/hpcer/certificate", headers: credentials("acme-bank-prod"))
        #expect(dotted.status == 400)
        #expect(dotted.problemType == "urn:setu:problem:bad-path")

        #expect(upstream.requests.count == 1)
        #expect(daemon.stop() == 0)
        let decisions = try hitLines(in: daemon.hitDirectory).map { $0["decision"] as? String ?? "" }
        #expect(
            decisions == [
                "deny:missing-credentials", "deny:missing-credentials", "deny:invalid-credentials", "deny:invalid-credentials",
                "deny:credential-expired", "deny:not-subscribed", "deny:pending-approval", "deny:operation-not-subscribed", "allow",
                "deny:no-route", "deny:no-operation", "deny:method-not-allowed", "deny:listing-api", "deny:bad-path",
            ])
        await upstream.stop()
    }

    @Test func twoKeysUnderOneClientIdAreBothAcceptedWhileAKeyIsRotated() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let pan = "/pan/v3/pancr/certificate"
        let json = [("Content-Type", "application/json")]
        let body =
            #"{"txnId":"f7f1469c-29b0-4325-9dfc-c567200a70f7","format":"pdf","certificateParameters":{"panno":"ABCDE1234F","PANFullName":"A B","FullName":"A B","DOB":"01-01-1990","GENDER":"M"}}"#
        let rotated = try await call(
            daemon.gateway + pan, headers: credentials("acme-bank-prod", key: LiveMarketplace.rotatedKey) + json,
            body: body)
        #expect(rotated.status == 200, "\(rotated.body)")
        let current = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod") + json, body: body)
        #expect(current.status == 200)
        let wrong = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod", key: "neither") + json, body: body)
        #expect(wrong.status == 401)
        #expect(daemon.stop() == 0)
        await upstream.stop()
    }

    @Test func upstreamDownIs502AndUpstreamSlowIs504() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let down = try await call(daemon.gateway + "/cbse/v3/class-x/sscer/certificate", headers: credentials("edu-verify-prod"), body: "{}")
        #expect(down.status == 502)
        #expect(down.problemType == "urn:setu:problem:upstream-unreachable")
        #expect(down.detail == "The gateway could not get an answer from cbse/class-x-certificates's upstream. Retry later.")

        let slow = try await call(
            daemon.gateway + "/transport/v3/driving-licence/drvlc/certificate",
            headers: credentials("swift-loans-prod"), body: "{}")
        #expect(slow.status == 504)
        #expect(slow.problemType == "urn:setu:problem:upstream-timeout")
        #expect(slow.detail.hasPrefix("transport/driving-licence did not answer within 1000 ms."))
        #expect(daemon.stop() == 0)
        let lines = try hitLines(in: daemon.hitDirectory)
        #expect(lines.map { $0["status"] as? Int } == [502, 504])
        #expect(lines.map { $0["decision"] as? String } == ["error:upstream-unreachable", "error:upstream-timeout"])
        #expect(daemon.stderr.contains("cbse/class-x-certificates: cannot connect to the upstream http://127.0.0.1:1: "))
        let upstreamMilliseconds = try #require(lines[1]["upstream_ms"] as? Double)
        #expect(upstreamMilliseconds >= 1000)
        await upstream.stop()
    }

    @Test func largeAnswersAreStreamedAndCounted() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let big = try await call(daemon.gateway + pan + "?big=1", headers: credentials("acme-bank-prod"), body: "{}")
        #expect(big.status == 200)
        #expect(big.body == (0..<200).map { String(repeating: String($0 % 10), count: 1000) }.joined())
        #expect(big.headers["Transfer-Encoding"] == ["chunked"])
        #expect(daemon.stop() == 0)
        let hit = try #require(try hitLines(in: daemon.hitDirectory).first)
        #expect(hit["bytes_out"] as? Int == 200_000)
        #expect(hit["status"] as? Int == 200)
        await upstream.stop()
    }

    @Test func aBodyOverTheLimitIsRefusedWith413() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: ["--max-body-bytes", "1000"])
        let big = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod"), body: String(repeating: "x", count: 5000))
        #expect(big.status == 413)
        #expect(big.problemType == "urn:setu:problem:body-too-large")
        let small = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod"), body: String(repeating: "x", count: 900))
        #expect(small.status == 200)
        await upstream.stop()
    }
}

enum HitFileNameList {
    static func first(in directory: String) throws -> String {
        try #require(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("hits-") }.sorted().first)
    }
}
