import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SetuTestSupport
import Testing

/// The admin listener's token: asked for beyond loopback, or whenever one is given.
@Suite(.serialized) struct AdminAuthLiveTests {
    let token = "c0ffee-admin-token-0123456789abcdef"

    func tokenFile(_ text: String) throws -> (TemporaryDirectory, String) {
        let directory = TemporaryDirectory()
        let file = directory.child("admin-token")
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: file))
        return (directory, file)
    }

    @Test func withoutATokenTheAdminListenerStaysOnLoopback() throws {
        let marketplace = try LiveMarketplace(upstreamPort: 1)
        let state = TemporaryDirectory()
        let open = try run(
            setuExecutable(), ["serve", "--repo", marketplace.path, "--state", state.child("state"), "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        #expect(open.status == 2)
        #expect(
            open.stderr.contains(
                "error: the admin listener on 0.0.0.0:0 would answer anyone who can reach it, and /status shows people's emails: give --admin-token-file FILE"
            ))
        let (directory, short) = try tokenFile("secret")
        _ = directory
        let weak = try run(setuExecutable(), ["serve", "--repo", marketplace.path, "--admin-token-file", short])
        #expect(weak.status == 2)
        #expect(weak.stderr.contains("must hold one token of at least 16 characters, without spaces"))
        let lonely = try run(setuExecutable(), ["serve", "--repo", marketplace.path, "--admin-tls-cert", short])
        #expect(lonely.status == 2)
        #expect(lonely.stderr.contains("--admin-tls-cert and --admin-tls-key go together"))
    }

    @Test func theTokenOrASignedInBrowserIsAskedForAndHealthStaysOpen() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let (directory, file) = try tokenFile(token)
        _ = directory
        let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: ["--admin-token-file", file])
        let admin = daemon.admin
        #expect(try await call(admin + "/healthz", method: .GET).status == 200)
        #expect(try await call(admin + "/readyz", method: .GET).status == 200)

        let refused = try await call(admin + "/status", method: .GET)
        #expect(refused.status == 401)
        #expect(refused.headers["WWW-Authenticate"].first == "Bearer realm=\"setu admin\"")
        #expect(!refused.body.contains("@"))
        #expect(try await call(admin + "/status", method: .GET, headers: [("Authorization", "Bearer wrong-token-0123456789")]).status == 401)
        #expect(try await call(admin + "/reconcile").status == 401)
        #expect(try await call(admin + "/metrics", method: .GET).status == 401)
        let status = try await call(admin + "/status", method: .GET, headers: [("Authorization", "Bearer \(token)")])
        #expect(status.status == 200)
        #expect(status.body.contains("\"revision\""))
        #expect(try await call(admin + "/reconcile", headers: [("Authorization", "Bearer \(token)")]).status == 200)

        // A browser is sent to the form, and signing in sets a cookie it cannot read or send elsewhere.
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        defer { _ = client.shutdown() }
        func send(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: String? = nil) async throws -> Answer {
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(string: body)) }
            let response = try await client.execute(request, timeout: .seconds(10))
            return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        let page = try await send(admin + "/alerts", method: .GET, headers: [("Accept", "text/html")])
        #expect(page.status == 303)
        #expect(page.headers["Location"].first == "/login?next=/alerts")
        let form = try await send(admin + "/login?next=/alerts", method: .GET)
        #expect(form.status == 200)
        #expect(form.body.contains(#"<label for="token">Admin token</label>"#))
        #expect(form.body.contains(#"<input type="hidden" name="next" value="/alerts">"#))
        let wrong = try await send(
            admin + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=nope&next=%2Falerts")
        #expect(wrong.status == 401)
        #expect(wrong.body.contains("That is not the admin token."))
        #expect(wrong.headers["Set-Cookie"].isEmpty)
        let elsewhere = try await send(
            admin + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=\(token)&next=https%3A%2F%2Fevil.example%2F")
        #expect(elsewhere.headers["Location"].first == "/dashboard")
        let signedIn = try await send(
            admin + "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "token=\(token)&next=%2Falerts")
        #expect(signedIn.status == 303)
        #expect(signedIn.headers["Location"].first == "/alerts")
        let cookie = try #require(signedIn.headers["Set-Cookie"].first)
        #expect(cookie.hasPrefix("setu_admin="))
        #expect(cookie.hasSuffix("; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict"))
        let value = String(cookie.split(separator: ";")[0])
        #expect(try await send(admin + "/alerts", method: .GET, headers: [("Cookie", value)]).status == 200)
        // A cookie whose expiry was changed is not signed by the token.
        let parts = value.dropFirst("setu_admin=".count).split(separator: ".")
        let forged = "setu_admin=\(Int(parts[0])! + 1000).\(parts[1])"
        #expect(try await send(admin + "/alerts", method: .GET, headers: [("Cookie", forged)]).status == 401)
        #expect(daemon.stop() == 0)
        await upstream.stop()
    }

    @Test func theAdminListenerServesHTTPSWithACertificate() async throws {
        let certificates = try TestCertificates()
        let marketplace = try LiveMarketplace(upstreamPort: 1)
        let (directory, file) = try tokenFile(token)
        _ = directory
        let daemon = try await RunningDaemon.start(
            repo: marketplace.path,
            arguments: ["--admin-token-file", file, "--admin-tls-cert", certificates.certificateFile, "--admin-tls-key", certificates.keyFile],
            waitUntilReady: false)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caFile)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        var answered = 0
        for _ in 0..<100 where answered != 200 {
            var request = HTTPClientRequest(url: "https://127.0.0.1:\(daemon.adminPort)/status")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            answered = Int((try? await client.execute(request, timeout: .seconds(5)))?.status.code ?? 0)
            if answered != 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answered == 200)
        try await client.shutdown()
        #expect(daemon.stop() == 0)
    }
}
