import AsyncHTTPClient
import Foundation
import NIOCore
import SetuTestSupport
import Testing

/// Connections: timeouts, the connection limit, pipelining, headers both ways, upstream
/// connection reuse, upstream failures, HTTPS upstreams, and reconciles under load.
extension DataPlaneTests {
    @Suite struct Connections {
        @Test func slowAndSilentClientsAreTimedOut() async throws {
            let plane = try await DataPlane.start(arguments: ["--header-timeout", "1s", "--idle-timeout", "2s"])
            let started = Date()
            // Slowloris: a head trickled a byte at a time.
            let trickle = try plane.client()
            let head = Array(DataPlane.head("GET", "/echo/trickle").utf8)
            var sent = 0
            while sent < head.count && trickle.send([head[sent]]) && Date().timeIntervalSince(started) < 3 {
                sent += 1
                try await Task.sleep(for: .milliseconds(150))
            }
            let trickled = trickle.response(within: 3)
            #expect(trickled?.status == 408)
            #expect(trickled?.problemType == "urn:setu:problem:header-timeout")
            #expect(trickle.closesWithin(3))
            #expect(Date().timeIntervalSince(started) < 2.5)

            // Half a head, then nothing.
            let half = try plane.client()
            half.send("GET /echo/half HTTP/1.1\r\nHost: gw.exa")
            #expect(half.response(within: 3)?.status == 408)
            #expect(half.closesWithin(3))

            // Connections that never send anything are closed, unanswered.
            var silent: [RawClient] = []
            for _ in 0..<450 { silent.append(try plane.client()) }
            try await Task.sleep(for: .milliseconds(1600))
            var closed = 0
            for client in silent where client.closesWithin(1) && client.received().isEmpty { closed += 1 }
            #expect(closed == 450)

            // A keep-alive connection is closed after the idle timeout.
            let idle = try plane.client()
            idle.send(DataPlane.head("GET", "/echo/once"))
            #expect(idle.response()?.status == 200)
            #expect(!idle.closesWithin(1.2))
            #expect(idle.closesWithin(3))
            #expect(plane.upstream.requests.map(\.uri) == ["/once"])
            #expect(plane.daemon.stop() == 0)
            #expect(try plane.hits().map { $0["decision"] as? String } == ["deny:header-timeout", "deny:header-timeout", "allow"])
        }

        @Test func connectionsOverTheLimitGet503() async throws {
            let plane = try await DataPlane.start(arguments: ["--max-connections", "5"])
            var open: [RawClient] = []
            for _ in 0..<5 { open.append(try plane.client()) }
            try await Task.sleep(for: .milliseconds(200))
            let extra = try plane.client()
            let answer = extra.response(within: 5)
            #expect(answer?.status == 503)
            #expect(answer?.problemType == "urn:setu:problem:too-many-connections")
            #expect(extra.closesWithin(5))
            open[0].send(DataPlane.head("GET", "/echo/within"))
            #expect(open[0].response()?.status == 200)
            let metrics = try await call(plane.daemon.admin + "/metrics", method: .GET).body
            #expect(metrics.contains("setu_gateway_connections_refused_total 1"))
            #expect(plane.daemon.stop() == 0)
        }

        @Test func pipelinedRequestsAreAnsweredInOrderOnOneUpstreamConnection() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send((0..<100).map { DataPlane.head("GET", "/echo/p\($0)") }.joined())
            var uris: [String] = []
            for _ in 0..<100 {
                guard let answer = client.response(within: 10) else { break }
                uris.append(answer.text)
            }
            #expect(uris == (0..<100).map { #"{"method":"GET","uri":"/p\#($0)","bytes":0}"# })
            #expect(plane.upstream.log.connections == 1)
            #expect(plane.daemon.stop() == 0)
            #expect(try plane.hits().count == 100)
        }

        @Test func headersAreReplacedNotAppendedAndHopByHopHeadersStripped() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(
                DataPlane.head(
                    "GET", "/echo/headers?x=1",
                    extra: """
                        X-Forwarded-For: 203.0.113.9\r
                        X-Real-IP: 203.0.113.9\r
                        X-Forwarded-Host: evil.example\r
                        X-Forwarded-Proto: https\r
                        Forwarded: for=203.0.113.9\r
                        X-Setu-Consumer: someone-else\r
                        X_Setu_Consumer: someone-else\r
                        X-Request-ID: mine-42\r
                        Connection: keep-alive, X-Drop-Me\r
                        X-Drop-Me: 1\r
                        Keep-Alive: timeout=5\r
                        TE: trailers\r
                        Proxy-Authorization: Basic c2VjcmV0\r
                        Authorization: Bearer token\r
                        Cookie: session=1\r
                        X-Kept: yes\r

                        """))
            let answer = client.response()
            #expect(answer?.status == 200)
            #expect(answer?.header("X-Request-ID") == ["mine-42"])
            let seen = try #require(plane.upstream.requests.last)
            #expect(seen.uri == "/headers?x=1")
            #expect(seen.header("X-Forwarded-For") == ["127.0.0.1"])
            #expect(seen.header("X-Real-IP") == ["127.0.0.1"])
            #expect(seen.header("X-Forwarded-Host") == ["gw.example"])
            #expect(seen.header("X-Forwarded-Proto") == ["http"])
            #expect(seen.header("Forwarded") == [#"for=127.0.0.1;host="gw.example";proto=http"#])
            #expect(seen.header("X-Setu-Consumer") == ["tester"])
            #expect(seen.header("X-Setu-Subscription") == ["tester/echo"])
            #expect(seen.header("X-Request-ID") == ["mine-42"])
            #expect(seen.header("Host") == ["127.0.0.1:\(plane.upstream.port)"])
            #expect(seen.header("X-Kept") == ["yes"])
            for gone in [
                "X_Setu_Consumer", "X-Drop-Me", "Keep-Alive", "TE", "Proxy-Authorization", "Authorization", "Cookie",
                "X-APISETU-CLIENTID", "X-APISETU-APIKEY", "Transfer-Encoding",
            ] {
                #expect(seen.header(gone).isEmpty, "\(gone) reached the upstream")
            }

            client.send(DataPlane.head("GET", "/echo/hop"))
            let hop = try #require(client.response())
            #expect(hop.text == "ok")
            #expect(hop.header("X-Kept") == ["yes"])
            for gone in ["X-Secret", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"] {
                #expect(hop.header(gone).isEmpty, "\(gone) reached the client")
            }
            #expect(hop.header("Connection").isEmpty)
            #expect(plane.daemon.stop() == 0)
        }

        @Test func upstreamConnectionsAreReusedOnlyWhenSafe() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            for index in 0..<20 {
                client.send(DataPlane.head("POST", "/echo/r\(index)", extra: "Content-Length: 3\r\n") + "abc")
                #expect(client.response()?.status == 200)
            }
            #expect(plane.upstream.log.connections == 1)
            // An answer with Connection: close ends that connection; the next request opens another.
            client.send(DataPlane.head("GET", "/echo/early-close"))
            #expect(client.response()?.status == 200)
            client.send(DataPlane.head("GET", "/echo/after-close"))
            #expect(client.response()?.status == 200)
            #expect(plane.upstream.log.connections == 2)
            // An early answer leaves the upstream connection unusable: it is closed, not pooled.
            client.send(DataPlane.head("POST", "/echo/early", extra: "Content-Length: 200000\r\n") + String(repeating: "e", count: 200_000))
            #expect(client.response()?.status == 200)
            let again = try plane.client()
            again.send(DataPlane.head("GET", "/echo/fresh"))
            #expect(again.response()?.status == 200)
            #expect(plane.upstream.log.connections == 3)
            #expect(plane.daemon.stop() == 0)
        }

        @Test func upstreamConnectionsAreBoundedPerHostAndClosedWhenIdle() async throws {
            let plane = try await DataPlane.start(arguments: ["--upstream-connections", "2", "--upstream-idle-timeout", "1s"])
            // Five slow requests at once on one event loop's share: at most two connections each loop.
            let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        let client = try plane.client()
                        client.send(DataPlane.head("GET", "/echo/sleep/300?\(index)"))
                        return client.response(within: 10)?.status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 6))
            #expect(plane.upstream.log.connections <= 4, "\(plane.upstream.log.connections) upstream connections")
            // Idle ones are closed after the idle timeout.
            try await Task.sleep(for: .milliseconds(1600))
            #expect(plane.upstream.log.closedConnections == plane.upstream.log.connections)

            // And a second before the upstream's own Keep-Alive timeout, when that is sooner.
            let withHint = try await DataPlane.start()
            let client = try withHint.client()
            client.send(DataPlane.head("GET", "/echo/keepalive/2"))
            #expect(client.response()?.text == "ka")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(withHint.upstream.log.closedConnections == 1)
            #expect(plane.daemon.stop() == 0)
            #expect(withHint.daemon.stop() == 0)
        }

        @Test func aClientThatLeavesMidAnswerClosesItsUpstreamConnection() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(DataPlane.head("GET", "/echo/stream/\(64 << 20)"))
            #expect(client.drain(1 << 20, within: 10) >= 1 << 20)
            client.close()
            for _ in 0..<50 where plane.upstream.log.closedConnections == 0 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(plane.upstream.log.closedConnections == 1)
            #expect(plane.daemon.stop() == 0)
            let hit = try #require(try plane.hits().first)
            #expect(hit["status"] as? Int == 200)
            #expect(hit["decision"] as? String == "error:client-closed")
        }

        @Test func aClientThatLeavesBeforeTheAnswerIsRecordedAs499() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(DataPlane.head("GET", "/echo/sleep/500"))
            for _ in 0..<50 where plane.upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            client.close()
            try await Task.sleep(for: .milliseconds(800))
            let after = try plane.client()
            after.send(DataPlane.head("GET", "/echo/after"))
            #expect(after.response()?.status == 200)
            #expect(plane.daemon.stop() == 0)
            let hits = try plane.hits()
            #expect(hits.map { $0["status"] as? Int } == [499, 200])
            #expect(hits.first?["decision"] as? String == "error:client-closed")
        }

        @Test func anUpstreamThatCannotBeConnectedToInTimeIs502() async throws {
            let blackhole = try Blackhole()
            let upstream = try RawUpstream()
            let marketplace = try DataPlaneMarketplace(upstreamPort: upstream.port, secureURL: "http://127.0.0.1:\(blackhole.port)/x")
            let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: ["--connect-timeout", "500ms"])
            let client = try RawClient(port: daemon.gatewayPort)
            let started = Date()
            client.send(DataPlane.head("GET", "/secure/a"))
            let answer = client.response(within: 10)
            #expect(answer?.status == 502)
            #expect(answer?.problemType == "urn:setu:problem:upstream-unreachable")
            #expect(Date().timeIntervalSince(started) < 3)
            #expect(daemon.stop() == 0)
            #expect(daemon.stderr.contains("lab/secure: cannot connect to the upstream http://127.0.0.1:\(blackhole.port): "))
        }

        @Test func upstreamFailuresNameTheAPIButNotTheHost() async throws {
            let plane = try await DataPlane.start(timeout: "1s")
            let client = try plane.client()
            let started = Date()
            client.send(DataPlane.head("GET", "/down/a"))
            let down = try #require(client.response())
            #expect(down.status == 502)
            #expect(down.problemType == "urn:setu:problem:upstream-unreachable")
            #expect(down.detail == "The gateway could not get an answer from lab/down's upstream. Retry later.")
            #expect(!down.text.contains("127.0.0.1") && !down.text.contains("refused"))
            #expect(Date().timeIntervalSince(started) < 1)

            client.send(DataPlane.head("GET", "/echo/silent"))
            let slow = try #require(client.response())
            #expect(slow.status == 504)
            #expect(slow.detail.hasPrefix("lab/echo did not answer within 1000 ms."))
            #expect(!slow.text.contains("127.0.0.1"))
            #expect(plane.daemon.stop() == 0)
            #expect(plane.daemon.stderr.contains("lab/down: cannot connect to the upstream http://127.0.0.1:1: "))
            let hits = try plane.hits()
            #expect(hits.map { $0["decision"] as? String } == ["error:upstream-unreachable", "error:upstream-timeout"])
            #expect(hits.map { $0["status"] as? Int } == [502, 504])
        }

        @Test func httpsUpstreamsAreVerifiedAgainstTheTrustedAuthorities() async throws {
            let certificates = try TestCertificates()
            let secure = try RawUpstream(tls: try certificates.serverContext())
            let plane = try await DataPlane.start(arguments: ["--upstream-ca", certificates.caFile], secure: secure, secureHost: "localhost")
            let client = try plane.client()
            client.send(DataPlane.head("POST", "/secure/documents", extra: "Content-Length: 4\r\n") + "data")
            let answer = client.response()
            #expect(answer?.status == 200)
            #expect(answer?.text == #"{"method":"POST","uri":"/tls/documents","bytes":4}"#)
            #expect(secure.requests.first?.header("Host") == ["localhost:\(secure.port)"])
            #expect(plane.daemon.stop() == 0)

            // Without the test authority, the system's trust store does not know the certificate.
            let untrusted = try await DataPlane.start(secure: secure, secureHost: "localhost")
            let refused = try untrusted.client()
            refused.send(DataPlane.head("GET", "/secure/x"))
            #expect(refused.response()?.status == 502)
            #expect(untrusted.daemon.stop() == 0)
            #expect(untrusted.daemon.stderr.contains("lab/secure: the upstream https://localhost:\(secure.port) failed before answering"))

            // A certificate for other names is refused even from a trusted authority.
            let other = try TestCertificates(names: "DNS:other.example")
            let misnamed = try RawUpstream(tls: try other.serverContext())
            let wrongName = try await DataPlane.start(arguments: ["--upstream-ca", other.caFile], secure: misnamed, secureHost: "localhost")
            let mismatch = try wrongName.client()
            mismatch.send(DataPlane.head("GET", "/secure/x"))
            #expect(mismatch.response()?.status == 502)
            #expect(misnamed.requests.isEmpty)
            #expect(wrongName.daemon.stop() == 0)
        }

        @Test func aHundredReconcilesUnderLoadCauseNoErrors() async throws {
            let plane = try await DataPlane.start()
            let fixture = plane.marketplace.fixture
            // Two revisions: with the echo subscription, and without it.
            let withEcho = try fixture.git("rev-parse", "HEAD")
            try fixture.remove("subscriptions/tester/echo.yaml")
            let withoutEcho = try fixture.commitAll("Unsubscribe from echo", author: "Admin <admin@setu.example>")
            let load = Task {
                var statuses: [Int: Int] = [:]
                var failures = 0
                let client = try plane.client()
                while !Task.isCancelled {
                    guard client.send(DataPlane.head("GET", "/echo/load")), let answer = client.response(within: 5) else {
                        failures += 1
                        break
                    }
                    statuses[answer.status, default: 0] += 1
                    if answer.status == 403 && answer.problemType != "urn:setu:problem:not-subscribed" { failures += 1 }
                }
                return (statuses, failures)
            }
            let refs = [withEcho, withoutEcho]
            for round in 0..<100 {
                _ = try fixture.git("update-ref", "refs/heads/main", refs[round % 2])
                let reconciled = try await call(plane.daemon.admin + "/reconcile")
                #expect(reconciled.status == 200)
            }
            load.cancel()
            let (statuses, failures) = try await load.value
            #expect(failures == 0)
            #expect(Set(statuses.keys).isSubset(of: [200, 403]))
            #expect((statuses[200] ?? 0) > 0 && (statuses[403] ?? 0) > 0)
            #expect(plane.daemon.stop() == 0)
        }
    }
}
