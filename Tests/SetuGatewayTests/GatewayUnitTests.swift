import Crypto
import Foundation
import SetuEntitlements
import SetuFormats
import SetuTestSupport
import Synchronization
import Testing

@testable import SetuGateway
@testable import SetuManifest

struct RoutingTests {
    func route(_ api: String, _ basePath: String, operations: [APIOperation] = []) -> GatewaySnapshot.Route {
        GatewaySnapshot.Route(
            api: api, publisher: String(api.split(separator: "/")[0]), category: .service, basePath: basePath,
            upstreamURL: "https://upstream.example", timeoutMilliseconds: 1000, consent: .none, operations: operations)
    }

    func table(_ routes: [GatewaySnapshot.Route]) -> RoutingTable {
        let snapshot = GatewaySnapshot(
            revision: "r1", routes: Dictionary(uniqueKeysWithValues: routes.map { ($0.basePath, $0) }),
            credentials: [:], entitlements: [:], inactive: [:], plans: [:], consentProviders: [:],
            partners: [:], listings: [:])
        return RoutingTable(snapshot)
    }

    @Test func theLongestBasePathWinsAtASegmentBoundary() throws {
        let routes = table([route("a/short", "/transport/v3"), route("a/long", "/transport/v3/vehicle"), route("a/root", "/")])
        #expect(routes.route(for: "/transport/v3/vehicle/rvcer")?.0.route.api == "a/long")
        #expect(routes.route(for: "/transport/v3/vehicle/rvcer")?.1 == "/rvcer")
        #expect(routes.route(for: "/transport/v3/vehicles")?.0.route.api == "a/short")
        #expect(routes.route(for: "/transport/v3/vehicle")?.1 == "")
        #expect(routes.route(for: "/transport/v3")?.0.route.api == "a/short")
        #expect(routes.route(for: "/other")?.0.route.api == "a/root")
        #expect(table([route("a/x", "/x/")]).route(for: "/x/y")?.1 == "/y")
    }

    @Test func operationsMatchByTemplateAndMethodPreferringLiterals() throws {
        let api = route(
            "p/users", "/u",
            operations: [
                APIOperation(method: "get", path: "/users/{id}", operationId: "getUser", summary: nil),
                APIOperation(method: "GET", path: "/users/me", operationId: "getMe", summary: nil),
                APIOperation(method: "DELETE", path: "/users/{id}", operationId: "deleteUser", summary: nil),
            ])
        let compiled = CompiledRoute(api)
        guard case .operation(let me) = compiled.match(method: "GET", path: "/users/me") else { Issue.record("no match"); return }
        #expect(me.operationId == "getMe")
        guard case .operation(let user) = compiled.match(method: "GET", path: "/users/42") else { Issue.record("no match"); return }
        #expect(user.operationId == "getUser")
        guard case .methodNotAllowed(let allowed) = compiled.match(method: "POST", path: "/users/42") else { Issue.record("no 405"); return }
        #expect(allowed == ["DELETE", "GET"])
        guard case .noOperation = compiled.match(method: "GET", path: "/users/42/posts") else { Issue.record("no 404"); return }
        guard case .undescribed = CompiledRoute(route("p/free", "/f")).match(method: "PATCH", path: "/anything") else {
            Issue.record("an API without operations passes every path"); return
        }
    }

    @Test func keysAreComparedByDigest() {
        let credential = CompiledCredential(
            GatewaySnapshot.Credential(
                clientId: "c", consumer: "acme", keySHA256: sha256Digest("right-key"), notBefore: "2026-01-01", notAfter: "2027-06-30"))
        #expect(credential.accepts(key: "right-key"))
        #expect(!credential.accepts(key: "wrong-key"))
        #expect(!credential.accepts(key: ""))
        #expect(credential.firstDay == Timestamp.daysSinceEpoch(of: "2026-01-01"))
        let malformed = CompiledCredential(
            GatewaySnapshot.Credential(
                clientId: "c", consumer: "acme", keySHA256: "xyz",
                notBefore: nil, notAfter: nil))
        #expect(!malformed.accepts(key: "anything"))
    }

    @Test func requestIdsAreKeptOnlyWhenWellFormed() {
        #expect(RequestIdentityStage.requestId("abc-123_x.y:z") == "abc-123_x.y:z")
        for bad in ["", "has space", "quote\"", String(repeating: "a", count: 129), "ünïcode"] {
            let made = RequestIdentityStage.requestId(bad)
            #expect(made != bad)
            #expect(made.count == 32 && made.allSatisfy(\.isHexDigit))
        }
        #expect(RequestIdentityStage.requestId(nil) != RequestIdentityStage.requestId(nil))
    }

    @Test func pathsThatCouldEscapeTheRouteAreRefused() {
        for plain in ["/", "/pan/v3/pancr/certificate", "/a/b.c/..d", "/a%20b", "/a%3bb"] {
            #expect(FramingStage.isPlainPath(Substring(plain)), "\(plain)")
        }
        for tricky in [
            "/pan/../cbse", "/pan/./x", "/pan/%2e%2e/cbse", "/pan%2Fcbse", "/a\\b", "relative", "/x/..",
            "/api/..;/other", "/a;jsessionid=1", "/a%00b", "/a#b",
        ] {
            #expect(!FramingStage.isPlainPath(Substring(tricky)), "\(tricky)")
        }
    }

    @Test func hostsAreNamesOrAddressesWithAnOptionalPort() {
        for good in ["gw.example", "gw.example:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080", "a-b_c~d", "x:"] {
            #expect(FramingStage.isAuthority(Substring(good)), "\(good)")
        }
        for bad in ["", "a b", "gw:80:80", "[::1", "[::1]x", "gw:port", "user@gw", "gw/x", "gw:123456", "[]", "gw\u{0}"] {
            #expect(!FramingStage.isAuthority(Substring(bad)), "\(bad)")
        }
    }

    @Test func upstreamURLsAreTakenApartOnce() throws {
        let plain = try #require(UpstreamTarget(url: "http://127.0.0.1:8181/tax/v3/"))
        #expect(plain.key == UpstreamTarget.Key(tls: false, host: "127.0.0.1", port: 8181))
        #expect(plain.hostHeader == "127.0.0.1:8181")
        #expect(plain.pathPrefix == "/tax/v3")
        let secure = try #require(UpstreamTarget(url: "HTTPS://API.CBSE.example/v3"))
        #expect(secure.key == UpstreamTarget.Key(tls: true, host: "api.cbse.example", port: 443))
        #expect(secure.hostHeader == "API.CBSE.example")
        let six = try #require(UpstreamTarget(url: "https://[::1]:8443"))
        #expect(six.key.host == "::1" && six.hostHeader == "[::1]:8443" && six.pathPrefix == "")
        #expect(six.key.description == "https://[::1]:8443")
        for bad in ["ftp://x", "http://", "http://a:0", "http://a:99999", "http://user@a/x", "http://a b/", "http://a/x\r\ny", "https://[::1"] {
            #expect(UpstreamTarget(url: bad) == nil, "\(bad)")
        }
    }

    @Test func headersGoingUpAndDownAreFiltered() {
        for dropped in [
            "Connection", "keep-alive", "TE", "Transfer-Encoding", "Host", "Content-Length", "Expect",
            "X-APISETU-CLIENTID", "x-apisetu-apikey", "Authorization", "Cookie", "Forwarded", "X-Real-IP",
            "X-Request-ID", "X-Setu-Anything", "x-forwarded-for", "X-Forwarded-Proto", "X_Setu_Consumer",
            "Proxy-Authorization", "Upgrade", "Trailer",
        ] {
            #expect(ProxyStage.isDroppedGoingUp(dropped), "\(dropped)")
        }
        for kept in ["Content-Type", "Accept", "X-Custom", "User-Agent", "X-Setu", "X-Forwarded"] {
            #expect(!ProxyStage.isDroppedGoingUp(kept), "\(kept)")
        }
        for dropped in ["Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Proxy-Authenticate", "X-Request-ID"] {
            #expect(ProxyStage.isDroppedGoingDown(dropped), "\(dropped)")
        }
        for kept in ["Content-Type", "Date", "Server", "Set-Cookie", "X-Setu-Trace"] {
            #expect(!ProxyStage.isDroppedGoingDown(kept), "\(kept)")
        }
        #expect(
            ProxyStage.listedInConnection(["Connection": "keep-alive, X-A , x-b", "connection": "close"])
                == [Array("x-a".utf8), Array("x-b".utf8)])
    }
}

struct EnforcementUnitTests {
    func consent(_ id: String, repeats: Int64? = nil) -> VerifiedConsent {
        VerifiedConsent(
            form: .artifact, provider: "p", consentId: id, client: "c", dataProvider: "cbse", dataId: "hscer",
            tokenId: nil, expiresMilliseconds: .max,
            frequency: repeats.map { .init(unit: "day", value: 1, repeats: $0) })
    }

    @Test func theLedgerJournalSurvivesARestartACutLineAndCompaction() throws {
        let folder = TemporaryDirectory()
        let file = folder.child("consents.jsonl")
        let now: Int64 = 1_796_000_000_000
        let ledger = try ConsentLedger(file: file)
        try ledger.use(client: "c", consumer: "x", transaction: "txn:1", consent: consent("a", repeats: 2), nowMilliseconds: now)
        try ledger.use(client: "c", consumer: "x", transaction: "txn:2", consent: consent("a", repeats: 2), nowMilliseconds: now)
        try ledger.save(nowMilliseconds: now)
        // A crash mid-line: the cut line is passed over.
        let handle = try #require(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"key":"c\ntxn:"#.utf8))
        try handle.close()
        let reopened = try ConsentLedger(file: file)
        #expect(throws: ConsentLedger.Refusal.self) {
            try reopened.use(client: "c", consumer: "x", transaction: "txn:1", consent: consent("a"), nowMilliseconds: now + 1000)
        }
        #expect(throws: ConsentLedger.Refusal.self) {
            try reopened.use(client: "c", consumer: "x", transaction: "txn:3", consent: consent("a", repeats: 2), nowMilliseconds: now + 1000)
        }
        // Another client's transaction of the same id is its own; a day later the first is forgotten.
        try reopened.use(client: "d", consumer: "y", transaction: "txn:1", consent: consent("b"), nowMilliseconds: now + 1000)
        try reopened.use(client: "c", consumer: "x", transaction: "txn:1", consent: consent("c"), nowMilliseconds: now + 86_400_001)
        // Many short-lived entries, then a save after they expired: the file is rewritten small.
        for index in 0..<3000 {
            try reopened.use(client: "e", consumer: "z", transaction: "txn:\(index)", consent: consent("d"), nowMilliseconds: now + 2000)
        }
        try reopened.save(nowMilliseconds: now + 2000)
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count > 3000)
        try reopened.save(nowMilliseconds: now + 2000 + 86_400_000 + 60_000)
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count < 10)
        try Data("not a ledger\n{}\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: GatewayError.self) { try ConsentLedger(file: file) }
    }

    @Test func quotaPeriodsAreUTCDaysAndMonths() {
        let day = Timestamp.daysSinceEpoch(of: "2025-12-04")!
        let noon = day * 86_400_000 + 43_200_000
        #expect(QuotaPeriod.index(.day, at: noon) == day)
        #expect(QuotaPeriod.end(of: day) == (day + 1) * 86_400_000)
        let month = QuotaPeriod.index(.month, at: noon)
        #expect(QuotaPeriod.name(of: month) == "2025-12")
        #expect(QuotaPeriod.end(of: month) == Timestamp.daysSinceEpoch(of: "2026-01-01")! * 86_400_000)
        #expect(QuotaPeriod.index(named: "2025-12") == month)
        #expect(QuotaPeriod.index(named: "2025-12-04") == day)
    }

    @Test func gcraAllowsTheBurstThenOneRequestPerInterval() {
        let plan = CompiledPlan(
            Plan(
                name: "p", displayName: "P", requests: 10, per: .second, burst: 3, quotaRequests: nil,
                quotaPer: nil, origin: ManifestOrigin(file: "policies/plans.yaml", document: 0)))
        let cell = LimitCell(consumer: "c", api: "a")
        let start: Int64 = 1_000_000_000
        #expect((0..<3).map { _ in cell.takeRate(plan, nowMicroseconds: start).allowed } == [true, true, true])
        let refused = cell.takeRate(plan, nowMicroseconds: start)
        #expect(!refused.allowed && refused.wait == 100_000)
        #expect(cell.takeRate(plan, nowMicroseconds: start + 100_000).allowed)
        #expect(plan.policyHeader == #""rate";q=3;w=1"#)
    }

    @Test func numbersAtTheEdgesOfTheirTypesNeitherTrapNorWrap() throws {
        // A plan whose bucket would hold more microseconds than Int64 has.
        let plan = CompiledPlan(
            Plan(
                name: "p", displayName: "P", requests: 1, per: .hour, burst: 999_999_999_999_999,
                quotaRequests: 999_999_999_999_999, quotaPer: .day,
                origin: ManifestOrigin(file: "policies/plans.yaml", document: 0)))
        let cell = LimitCell(consumer: "c", api: "a")
        #expect(cell.takeRate(plan, nowMicroseconds: 1_000_000_000).allowed)
        #expect(cell.takeQuota(plan.quota!, period: .day, nowMilliseconds: 1_000_000).allowed)
        // An OpenAPI document's count beyond any body, and a token's time beyond any clock.
        let schema = try JSONSchema(.object(["type": .string("string"), "maxLength": .number(1e300), "minItems": .number(-5)]))
        #expect(schema.isValid(.string("abc")))
        #expect(ConsentVerifier.milliseconds(seconds: 1e300) == nil)
        #expect(ConsentVerifier.milliseconds(seconds: 1_796_000_000) == 1_796_000_000_000)
        let frequency = VerifiedConsent.Frequency(unit: "month", value: 100_000, repeats: 1)
        #expect(ConsentLedger.period(of: frequency, at: 1_796_000_000_000).0 == 0)
    }

    @Test func canonicalJSONAndRFC3339AreReadAsTheStandardsSay() {
        let value: JSONValue = .object([
            "b": .number(1), "a": .array([.string("é\n"), .number(1.5), .number(1e21), .bool(true), .null]),
            "\u{fb33}": .string("x"), "\u{1d11e}": .string("y"),
        ])
        // RFC 8785 §3.2.3: keys by UTF-16 code units, so U+1D11E (0xD834 0xDD1E) sorts before
        // U+FB33, though it is the larger code point.
        #expect(
            String(decoding: CanonicalJSON.encode(value), as: UTF8.self)
                == #"{"a":["é\n",1.5,1e+21,true,null],"b":1,"𝄞":"y","\#u{fb33}":"x"}"#)
        #expect(ConsentVerifier.milliseconds("1970-01-01T00:00:01.5Z") == 1500)
        #expect(ConsentVerifier.milliseconds("1970-01-01T05:30:00+05:30") == 0)
        #expect(ConsentVerifier.milliseconds("1970-01-01 00:00:00Z") == nil)
        #expect(ConsentVerifier.milliseconds("1970-01-01T00:00:00") == nil)
    }
}

/// The lowercase hex SHA-256 of a key, as a credential's `keySHA256` holds it.
func sha256Digest(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}
