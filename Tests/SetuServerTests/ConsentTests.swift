import Foundation
import SetuTestSupport
import Testing

/// Consent for document APIs, on a running daemon with real keys: authorized partners'
/// bearer tokens and API Setu's consent artifacts, each refusal with its own type.
extension DataPlaneTests {
    @Suite struct Consent {
        static let partnerKey = "partner-key-0123456789"
        let target = "/cbse/v3/hscer/certificate"

        struct Plane {
            let upstream: RawUpstream
            let provider: TestConsentProvider
            let marketplace: EnforcementMarketplace
            let daemon: RunningDaemon
        }

        func start(algorithms: [String] = ["EdDSA", "ES256", "RS256"]) async throws -> Plane {
            let upstream = try RawUpstream()
            let provider = try TestConsentProvider()
            try await provider.start()
            let marketplace = try EnforcementMarketplace(
                upstreamPort: upstream.port, consent: "required",
                extraPolicies: provider.manifest(algorithms: algorithms),
                partner: TestConsentProvider.partner(key: Self.partnerKey))
            let daemon = try await RunningDaemon.start(repo: marketplace.path)
            // The RSA key comes from the JWKS, fetched once the reconcile has named it.
            for _ in 0..<100 where !daemon.stderr.contains("keys from http://127.0.0.1:\(provider.port)") {
                try await Task.sleep(for: .milliseconds(50))
            }
            return Plane(upstream: upstream, provider: provider, marketplace: marketplace, daemon: daemon)
        }

        func body(txnId: String = UUID().uuidString.lowercased(), artifact: [String: Any]? = nil) throws -> String {
            var object: [String: Any] = [
                "txnId": txnId, "format": "pdf",
                "certificateParameters": ["rollno": "1100040", "year": "2016", "FullName": "Asha Verma"],
            ]
            if let artifact { object["consentArtifact"] = artifact }
            return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        }

        func bearer(_ plane: Plane, _ token: String, body: String? = nil) async throws -> Answer {
            try await call(
                plane.daemon.gateway + target, headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/json")],
                body: try body ?? self.body())
        }

        func withKeys(
            _ plane: Plane, clientId: String = EnforcementMarketplace.clientId, key: String = EnforcementMarketplace.key,
            body: String
        ) async throws -> Answer {
            try await call(
                plane.daemon.gateway + target,
                headers: [("X-APISETU-CLIENTID", clientId), ("X-APISETU-APIKEY", key), ("Content-Type", "application/json")],
                body: body)
        }

        func expectTokenRefused(_ answer: Answer, _ type: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(answer.status == 401, "\(answer.body)", sourceLocation: sourceLocation)
            #expect(answer.problemType == "urn:setu:problem:" + type, "\(answer.body)", sourceLocation: sourceLocation)
            #expect(
                answer.headers["WWW-Authenticate"].first?.hasPrefix(#"Bearer realm="setu", error="invalid_token", error_description=""#) == true,
                "\(answer.headers)", sourceLocation: sourceLocation)
        }

        @Test func aPartnersTokenInEachAlgorithmIsAcceptedAndNothingAboutTheUserIsLogged() async throws {
            let plane = try await start()
            for alg in ["EdDSA", "ES256", "RS256"] {
                let answer = try await bearer(plane, try plane.provider.token(plane.provider.claims(), alg: alg))
                #expect(answer.status == 200, "\(alg): \(answer.body)")
            }
            let claims = plane.provider.claims()
            let token = try plane.provider.token(claims)
            // The same token for two transactions: a consent is used once per transaction.
            #expect(try await bearer(plane, token).status == 200)
            #expect(try await bearer(plane, token).status == 200)
            #expect(plane.upstream.requests.count == 5)
            let forwarded = try #require(plane.upstream.requests.last)
            #expect(forwarded.header("Authorization").isEmpty, "the token does not reach the upstream")
            #expect(forwarded.header("X-Setu-Consumer") == ["partner"])
            #expect(plane.daemon.stop() == 0)
            let hits = try hitLines(in: plane.daemon.hitDirectory)
            #expect(hits.last?["consent_id"] as? String == claims["consent_id"] as? String)
            #expect(hits.last?["client_id"] as? String == TestConsentProvider.partnerClient)
            let logged =
                try String(
                    contentsOfFile: plane.daemon.hitDirectory + "/"
                        + (try FileManager.default.contentsOfDirectory(atPath: plane.daemon.hitDirectory).filter { $0.hasPrefix("hits-") }.sorted().last!),
                    encoding: .utf8)
                + plane.daemon.stderr
            for personal in ["user-7d1e", "Asha", "asha@example.in"] {
                #expect(!logged.contains(personal), "\(personal) is in a log")
            }
            await plane.provider.stop()
        }

        @Test func tokensThatAreNotTrustworthyAreRefusedWithTheirOwnType() async throws {
            let plane = try await start(algorithms: ["EdDSA", "RS256"])
            let provider = plane.provider
            let now = Int(Date().timeIntervalSince1970)
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(), kid: "ed-9")), "consent-unknown-key")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(), alg: "ES256")), "consent-algorithm-refused")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(), alg: "none")), "consent-algorithm-refused")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(), alg: "HS256")), "consent-algorithm-refused")
            // A valid signature under a kid of another algorithm, and a forged one.
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(), alg: "RS256", kid: "ed-1")), "consent-algorithm-refused")
            let forged = try provider.token(provider.claims())
            expectTokenRefused(try await bearer(plane, String(forged.dropLast(4)) + "AAAA"), "consent-bad-signature")
            expectTokenRefused(try await bearer(plane, "not.a-token"), "consent-malformed")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["iss": "https://evil.example"]))), "consent-wrong-issuer")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["aud": "someone-else"]))), "consent-wrong-audience")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["iat": now - 900, "exp": now - 120]))), "consent-expired")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["nbf": now + 300]))), "consent-not-yet-valid")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["exp": now + 7200]))), "consent-lifetime-too-long")
            expectTokenRefused(try await bearer(plane, try provider.token(provider.claims(["client_id": "OTHER-9"]))), "consent-foreign")
            #expect(plane.upstream.requests.isEmpty)
            await provider.stop()
        }

        @Test func aConsentMustCoverTheCallAndATransactionIsUsedOnce() async throws {
            let plane = try await start()
            let provider = plane.provider
            let otherOperation = try await bearer(plane, try provider.token(provider.claims(["data_id": "hpcer"])))
            #expect(otherOperation.status == 403)
            #expect(otherOperation.problemType == "urn:setu:problem:consent-not-covering")
            #expect(otherOperation.detail.contains("hpcer") && otherOperation.detail.contains("hscer"))
            let otherPublisher = try await bearer(plane, try provider.token(provider.claims(["data_provider": "lab"])))
            #expect(otherPublisher.problemType == "urn:setu:problem:consent-not-covering")

            let token = try provider.token(provider.claims())
            let body = try self.body(txnId: "7f0c5b2e-1111-4222-8333-944455556666")
            #expect(try await bearer(plane, token, body: body).status == 200)
            expectTokenRefused(try await bearer(plane, token, body: body), "consent-replayed")

            // A partner that authenticates with its keys still needs the consent.
            let keysOnly = try await withKeys(plane, clientId: "partner-keys", key: Self.partnerKey, body: try self.body())
            #expect(keysOnly.status == 403)
            #expect(keysOnly.problemType == "urn:setu:problem:consent-required")
            #expect(keysOnly.detail.contains("Authorization: Bearer") && keysOnly.detail.contains("consentArtifact"))
            let offline = try await withKeys(plane, body: try self.body())
            #expect(offline.problemType == "urn:setu:problem:consent-required")
            #expect(plane.upstream.requests.count == 1)
            await provider.stop()
        }

        @Test func consentArtifactsAreVerifiedAndBoundToTheirClient() async throws {
            let plane = try await start()
            let provider = plane.provider
            let consent = TestConsentProvider.consent(client: EnforcementMarketplace.clientId)
            let artifact = try provider.artifact(consent)
            let accepted = try await withKeys(plane, body: try body(artifact: artifact))
            #expect(accepted.status == 200, "\(accepted.body)")
            #expect(try await withKeys(plane, body: try body(artifact: try provider.artifact(consent, alg: "ES256"))).status == 200)

            var altered = artifact
            var changed = consent
            changed["data"] = ["id": "hpcer"]
            altered["consent"] = changed
            let tampered = try await withKeys(plane, body: try body(artifact: altered))
            #expect(tampered.status == 403)
            #expect(tampered.problemType == "urn:setu:problem:consent-bad-signature")

            let stolen = try await withKeys(plane, clientId: "partner-keys", key: Self.partnerKey, body: try body(artifact: artifact))
            #expect(stolen.status == 403)
            #expect(stolen.problemType == "urn:setu:problem:consent-foreign")

            let formatter = ISO8601DateFormatter()
            let past = TestConsentProvider.consent(
                client: EnforcementMarketplace.clientId,
                changes: [
                    "permission": [
                        "access": "VIEW", "frequency": ["unit": "DAY", "value": 1, "repeats": 5],
                        "dateRange": [
                            "from": formatter.string(from: Date().addingTimeInterval(-3000)),
                            "to": formatter.string(from: Date().addingTimeInterval(-1200)),
                        ],
                    ]
                ])
            let expired = try await withKeys(plane, body: try body(artifact: try provider.artifact(past)))
            #expect(expired.status == 403)
            #expect(expired.problemType == "urn:setu:problem:consent-expired")

            let sameTransaction = try body(txnId: "0b7e2d1c-aaaa-4bbb-8ccc-0123456789ab", artifact: artifact)
            #expect(try await withKeys(plane, body: sameTransaction).status == 200)
            let replayed = try await withKeys(plane, body: sameTransaction)
            #expect(replayed.status == 403)
            #expect(replayed.problemType == "urn:setu:problem:consent-replayed")

            // repeats: 2 a day — the third transaction under one consent is refused like a spent quota.
            let twice = try provider.artifact(
                TestConsentProvider.consent(
                    client: EnforcementMarketplace.clientId,
                    changes: [
                        "permission": [
                            "access": "VIEW", "frequency": ["unit": "DAY", "value": 1, "repeats": 2],
                            "dateRange": [
                                "from": formatter.string(from: Date().addingTimeInterval(-60)),
                                "to": formatter.string(from: Date().addingTimeInterval(600)),
                            ],
                        ]
                    ]))
            #expect(try await withKeys(plane, body: try body(artifact: twice)).status == 200)
            #expect(try await withKeys(plane, body: try body(artifact: twice)).status == 200)
            let spent = try await withKeys(plane, body: try body(artifact: twice))
            #expect(spent.status == 429)
            #expect(spent.problemType == "urn:setu:problem:consent-use-exhausted")
            #expect(spent.headers["Retry-After"].first.flatMap(Int.init) != nil)
            #expect(plane.upstream.requests.count == 5)

            #expect(plane.daemon.stop() == 0)
            let hits = try hitLines(in: plane.daemon.hitDirectory)
            #expect(hits.first?["consent_id"] as? String == consent["consentId"] as? String)
            let logged = try String(
                contentsOfFile: plane.daemon.hitDirectory + "/"
                    + (try FileManager.default.contentsOfDirectory(atPath: plane.daemon.hitDirectory).filter { $0.hasPrefix("hits-") }.sorted().last!),
                encoding: .utf8)
            for personal in ["999988887777", "9876543210", "asha@example.in"] { #expect(!logged.contains(personal)) }
            // Replays stay refused after a restart: the ledger is in the state folder.
            let restarted = try await RunningDaemon.start(repo: plane.marketplace.path, state: plane.daemon.state)
            let again = try await call(
                restarted.gateway + target,
                headers: EnforcementMarketplace.credentials + [("Content-Type", "application/json")], body: sameTransaction)
            #expect(again.problemType == "urn:setu:problem:consent-replayed")
            await provider.stop()
        }

        @Test func jwksKeysAreFetchedAndKeptWhenTheProviderFails() async throws {
            let plane = try await start()
            let provider = plane.provider
            #expect(try await bearer(plane, try provider.token(provider.claims(), alg: "RS256")).status == 200)
            provider.failing = true
            try await Task.sleep(for: .milliseconds(2500))
            #expect(plane.daemon.stderr.contains("cannot fetch the JWKS of consent provider test-consent"))
            #expect(try await bearer(plane, try provider.token(provider.claims(), alg: "RS256")).status == 200, "the last keys are kept")
            try provider.rotateRSA()
            provider.failing = false
            var rotated: Answer?
            for _ in 0..<40 {
                rotated = try await bearer(plane, try provider.token(provider.claims(), alg: "RS256"))
                if rotated?.status == 200 { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(rotated?.status == 200, "the provider's new key is fetched after its failure")
            await provider.stop()
        }
    }
}
