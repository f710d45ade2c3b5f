import Foundation
import SetuTestSupport
import Testing

/// The data plane's tests, one at a time: they measure timeouts, memory and connection
/// counts, which tests running beside them on two cores would blur.
@Suite(.serialized) enum DataPlaneTests {}

/// A running daemon in front of a raw upstream, on the data plane's own marketplace.
struct DataPlane {
    let upstream: RawUpstream
    let marketplace: DataPlaneMarketplace
    let daemon: RunningDaemon

    static func start(
        arguments: [String] = [], secure: RawUpstream? = nil, secureHost: String = "127.0.0.1",
        timeout: String = "2s"
    ) async throws -> DataPlane {
        let upstream = try RawUpstream()
        let marketplace = try DataPlaneMarketplace(
            upstreamPort: upstream.port,
            secureURL: secure.map { "https://\(secureHost):\($0.port)/tls" },
            timeout: timeout)
        let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: arguments)
        return DataPlane(upstream: upstream, marketplace: marketplace, daemon: daemon)
    }

    func client() throws -> RawClient {
        try RawClient(port: daemon.gatewayPort)
    }

    /// A request line and the headers every test request has: Host and the credentials.
    static func head(_ method: String = "GET", _ target: String, version: String = "HTTP/1.1", extra: String = "") -> String {
        "\(method) \(target) \(version)\r\nHost: gw.example\r\n\(DataPlaneMarketplace.credentials)\(extra)\r\n"
    }

    func hits() throws -> [[String: Any]] {
        try hitLines(in: daemon.hitDirectory)
    }
}

/// Framing and request smuggling (RFC 9112 §6.3, §11.2), with raw bytes on a socket: every
/// malformed or ambiguous message gets 400 (or the status its class has) and a closed
/// connection, and the upstream sees nothing of it.
extension DataPlaneTests {
    @Suite struct Framing {
        let credentials = DataPlaneMarketplace.credentials
        let smuggled = "GET /echo/smuggled HTTP/1.1\r\nHost: gw.example\r\n\r\n"

        /// Sends one message; expects the status and problem type, and a closed connection.
        func expectRefused(
            _ plane: DataPlane, _ raw: String, status: Int, type: String,
            closes: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let client = try plane.client()
            client.send(raw)
            let answer = client.response(within: 10)
            #expect(answer?.status == status, "\(raw.debugDescription)", sourceLocation: sourceLocation)
            #expect(answer?.problemType == "urn:setu:problem:" + type, "\(raw.debugDescription)", sourceLocation: sourceLocation)
            if closes {
                #expect(answer?.header("Connection") == ["close"], "\(raw.debugDescription)", sourceLocation: sourceLocation)
                #expect(client.closesWithin(5), "\(raw.debugDescription) left the connection open", sourceLocation: sourceLocation)
            }
        }

        @Test func ambiguousFramingIsRefusedAndNothingReachesTheUpstream() async throws {
            let plane = try await DataPlane.start()
            let post = "POST /echo/a HTTP/1.1\r\nHost: gw.example\r\n\(credentials)"
            let cases: [(String, String)] = [
                ("CL.TE", post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX" + smuggled),
                ("TE.CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
                ("TE.TE", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled),
                ("TE not chunked last", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
                ("TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
                ("space before colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
                ("two Content-Lengths", post + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
                ("the same Content-Length twice", post + "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),
                ("signed Content-Length", post + "Content-Length: +4\r\n\r\nabcd"),
                ("hex Content-Length", post + "Content-Length: 0x4\r\n\r\nabcd"),
                ("empty Content-Length", post + "Content-Length: \r\n\r\n"),
                ("obs-fold", post + "X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
                ("bare LF", "GET /echo/a HTTP/1.1\nHost: gw.example\n\n"),
                ("bare CR in a value", post + "X-Value: a\rb\r\n\r\n"),
                ("NUL in a value", post + "X-Value: a\u{0}b\r\n\r\n"),
                ("control byte in the target", "GET /echo/a\u{1}b HTTP/1.1\r\nHost: gw.example\r\n\r\n"),
                ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                (
                    "HTTP/1.0 with Transfer-Encoding",
                    "POST /echo/a HTTP/1.0\r\nHost: gw.example\r\nConnection: keep-alive\r\n\(credentials)Transfer-Encoding: chunked\r\n\r\n"
                        + "0\r\n\r\n" + smuggled
                ),
            ]
            for (_, raw) in cases {
                try expectRefused(plane, raw, status: 400, type: "bad-request")
            }
            #expect(plane.upstream.log.bytes == 0)
            #expect(plane.upstream.log.connections == 0)
            #expect(plane.daemon.stop() == 0)
            let hits = try plane.hits()
            #expect(hits.count == cases.count)
            #expect(hits.allSatisfy { $0["status"] as? Int == 400 && $0["decision"] as? String == "deny:bad-request" })
        }

        @Test func malformedChunkedBodiesAreTheClientsFault() async throws {
            let plane = try await DataPlane.start()
            let head = DataPlane.head("POST", "/echo/chunks", extra: "Transfer-Encoding: chunked\r\n")
            let cases = [
                ("chunk size overflow", head + "fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
                ("LF-only chunk line", head + "4\nabcd\n0\n\n"),
                ("bad chunk extension", head + "4;\u{1}\r\nabcd\r\n0\r\n\r\n"),
                ("chunk longer than its size", head + "2\r\nabcd\r\n0\r\n\r\n"),
                ("non-hex chunk size", head + "zz\r\nabcd\r\n0\r\n\r\n"),
            ]
            for (_, raw) in cases {
                try expectRefused(plane, raw, status: 400, type: "bad-body")
            }
            #expect(plane.upstream.log.bytes == 0)
            #expect(plane.daemon.stop() == 0)
            let hits = try plane.hits()
            #expect(hits.map { $0["decision"] as? String } == Array(repeating: "deny:bad-body", count: cases.count))
            #expect(hits.allSatisfy { $0["api"] as? String == "lab/echo" && $0["consumer"] as? String == "tester" })
        }

        @Test func hostTargetMethodAndUpgradeAreChecked() async throws {
            let plane = try await DataPlane.start()
            let get = "GET /echo/a HTTP/1.1\r\n\(credentials)"
            try expectRefused(plane, get + "\r\n", status: 400, type: "bad-host")
            try expectRefused(plane, get + "Host: a.example\r\nHost: b.example\r\n\r\n", status: 400, type: "bad-host")
            for bad in ["a b.example", "gw.example:80:80", "[::1", "gw.example:port", "", "gw/evil", "user@gw.example"] {
                try expectRefused(plane, get + "Host: \(bad)\r\n\r\n", status: 400, type: "bad-host")
            }
            try expectRefused(
                plane, "CONNECT upstream.example:443 HTTP/1.1\r\nHost: upstream.example:443\r\n\r\n",
                status: 501, type: "unsupported-method")
            try expectRefused(
                plane, DataPlane.head("GET", "/echo/ws", extra: "Connection: Upgrade\r\nUpgrade: websocket\r\n"),
                status: 400, type: "upgrade-refused")
            try expectRefused(
                plane, DataPlane.head("GET", "/echo/h2c", extra: "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"),
                status: 400, type: "upgrade-refused")
            try expectRefused(
                plane, DataPlane.head("POST", "/echo/a", extra: "Content-Length: 2\r\nTransfer-Encoding: gzip, chunked\r\n"),
                status: 400, type: "bad-request")
            try expectRefused(
                plane, DataPlane.head("POST", "/echo/a", extra: "Transfer-Encoding: gzip, chunked\r\n"),
                status: 501, type: "unsupported-transfer-coding")
            try expectRefused(
                plane, DataPlane.head("POST", "/echo/a", extra: "Content-Length: 2\r\nExpect: fancy\r\n") + "ab",
                status: 417, type: "expectation-failed")
            // Refused, but the framing is sound: the connection stays open.
            try expectRefused(
                plane, "GET http://elsewhere.example/echo/a HTTP/1.1\r\nHost: gw.example\r\n\(credentials)\r\n",
                status: 400, type: "bad-target", closes: false)
            try expectRefused(plane, DataPlane.head("GET", "/echo/a#fragment"), status: 400, type: "bad-target", closes: false)
            try expectRefused(plane, DataPlane.head("OPTIONS", "*"), status: 400, type: "bad-target", closes: false)
            for path in ["/echo/a;b/c", "/echo/..;/x", "/echo/a%00b", "/echo/%2e%2e/x", "/echo/a%2fb", "/echo/./a", "/echo/a\\b"] {
                try expectRefused(plane, DataPlane.head("GET", path), status: 400, type: "bad-path", closes: false)
            }
            #expect(plane.upstream.log.bytes == 0)

            // The gateway's own authority in absolute form is a plain request, routed by its path.
            let client = try plane.client()
            client.send("GET http://gw.example/echo/absolute?q=1 HTTP/1.1\r\nHost: gw.example\r\n\(credentials)\r\n")
            #expect(client.response()?.status == 200)
            #expect(plane.upstream.requests.map(\.uri) == ["/absolute?q=1"])
            #expect(plane.daemon.stop() == 0)
        }

        @Test func limitsOnTheTargetAndHeadersAreAnsweredWith414And431() async throws {
            let plane = try await DataPlane.start(arguments: ["--max-headers", "20", "--max-header-bytes", "4096"])
            let long = "/echo/" + String(repeating: "a", count: 9000)
            try expectRefused(plane, DataPlane.head("GET", long), status: 414, type: "uri-too-long")
            let huge = "/echo/" + String(repeating: "a", count: 64 << 10)
            try expectRefused(plane, DataPlane.head("GET", huge), status: 414, type: "uri-too-long")
            let many = (0..<21).map { "X-Header-\($0): v\r\n" }.joined()
            try expectRefused(plane, DataPlane.head("GET", "/echo/a", extra: many), status: 431, type: "headers-too-large")
            let big = "X-Big: " + String(repeating: "b", count: 5000) + "\r\n"
            try expectRefused(plane, DataPlane.head("GET", "/echo/a", extra: big), status: 431, type: "headers-too-large")
            let bigger = "X-Big: " + String(repeating: "b", count: 100_000) + "\r\n"
            try expectRefused(plane, DataPlane.head("GET", "/echo/a", extra: bigger), status: 431, type: "headers-too-large")
            #expect(plane.upstream.log.bytes == 0)
            let fine = try plane.client()
            fine.send(DataPlane.head("GET", "/echo/" + String(repeating: "a", count: 8000), extra: (0..<10).map { "X-H\($0): v\r\n" }.joined()))
            #expect(fine.response()?.status == 200)
            #expect(plane.daemon.stop() == 0)
            #expect(try plane.hits().map { $0["status"] as? Int } == [414, 414, 431, 431, 431, 200])
        }

        @Test func bodiesOverTheLimitAre413AlsoWhenChunked() async throws {
            let plane = try await DataPlane.start(arguments: ["--max-body-bytes", "100000"])
            try expectRefused(
                plane, DataPlane.head("POST", "/echo/a", extra: "Content-Length: 100001\r\n"),
                status: 413, type: "body-too-large")
            let client = try plane.client()
            client.send(DataPlane.head("POST", "/echo/chunked", extra: "Transfer-Encoding: chunked\r\n"))
            let chunk = String(repeating: "c", count: 30000)
            for _ in 0..<4 { client.send(String(30000, radix: 16) + "\r\n" + chunk + "\r\n") }
            let answer = client.response(within: 10)
            #expect(answer?.status == 413)
            #expect(answer?.problemType == "urn:setu:problem:body-too-large")
            #expect(client.closesWithin(5))
            #expect(plane.upstream.requests.isEmpty)
            #expect(plane.daemon.stop() == 0)
        }

        @Test func credentialsSentTwiceNeverAuthenticate() async throws {
            let plane = try await DataPlane.start()
            let key = DataPlaneMarketplace.key, id = DataPlaneMarketplace.clientId
            for extra in [
                "X-APISETU-CLIENTID: \(id)\r\nX-APISETU-CLIENTID: other\r\nX-APISETU-APIKEY: \(key)\r\n",
                "X-APISETU-CLIENTID: \(id)\r\nX-APISETU-APIKEY: wrong\r\nx-apisetu-apikey: \(key)\r\n",
                "X-APISETU-CLIENTID: \(id)\r\nX-APISETU-APIKEY: \(key)\r\nX-APISETU-APIKEY: \(key)\r\n",
            ] {
                let client = try plane.client()
                client.send("GET /echo/a HTTP/1.1\r\nHost: gw.example\r\n\(extra)\r\n")
                let answer = client.response()
                #expect(answer?.status == 401)
                #expect(answer?.detail.contains("more than once") == true)
            }
            #expect(plane.upstream.log.bytes == 0)
            #expect(plane.daemon.stop() == 0)
        }

        /// Payloads in the manner of request-smuggling scanners (defparam's smuggler, PortSwigger's
        /// HTTP Request Smuggler): `Transfer-Encoding` disguised in its name, separator, value and
        /// line ending, each sent with `Content-Length`, CL.TE and TE.CL. Whatever the gateway makes
        /// of each, no smuggled request reaches the upstream, and what does reach it carries no
        /// second framing header.
        @Test func smugglingScannerPayloadsNeverReachTheUpstreamAsTwoRequests() async throws {
            let plane = try await DataPlane.start()
            let names = [
                "Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING", "Transfer_Encoding", "Transfer Encoding",
                " Transfer-Encoding", "Transfer-Encoding ", "\tTransfer-Encoding", "Transfer-Encoding\t",
                "Transfer-Encoding\u{0}", "X: y\r\nTransfer-Encoding", "Transfer-Encodin", "Content-Encoding",
            ]
            let separators = [": ", ":", ":\t", ":\u{b}", ":\u{c}", ": \u{0}", " : ", "\t: ", ":\r\n "]
            let values = [
                "chunked", "Chunked", "CHUNKED", "chunked ", " chunked", "\tchunked", "xchunked", "chunkedx",
                "chunked, identity", "identity, chunked", "chunk", "\"chunked\"", "chunked\r", "\u{b}chunked",
                "chunked;", "cHuNkEd", "chunked\u{0}", "identity",
            ]
            var lines: [String] = []
            for name in names { for value in values { lines.append(name + ": " + value) } }
            for separator in separators { for value in values { lines.append("Transfer-Encoding" + separator + value) } }
            var payloads: [String] = []
            let post = "POST /echo/scan HTTP/1.1\r\nHost: gw.example\r\n\(credentials)Content-Type: application/x-www-form-urlencoded\r\n"
            for line in lines {
                payloads.append(post + "Content-Length: 6\r\n" + line + "\r\n\r\n0\r\n\r\nX" + smuggled)
                payloads.append(post + line + "\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST /echo/smuggled HTTP/1.1\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n")
            }
            for payload in payloads {
                let client = try plane.client()
                client.send(payload)
                let answer = client.response(within: 10)
                #expect(answer != nil, "\(payload.debugDescription) got no answer")
                #expect((answer?.status ?? 0) < 500, "\(payload.debugDescription)")
                _ = client.closesWithin(0.05)
            }
            let requests = plane.upstream.requests
            #expect(!requests.contains { $0.uri.contains("smuggled") })
            for request in requests {
                let framing = request.headers.filter {
                    let name = $0.0.lowercased().replacingOccurrences(of: "_", with: "-").trimmingCharacters(in: .whitespaces)
                    return name == "transfer-encoding" || name == "content-length"
                }
                #expect(framing.count == 1, "\(request.headers)")
                #expect(framing.first.map { $0.0.lowercased() == "content-length" && Int($0.1) == request.body.count } == true)
            }
            #expect(payloads.count > 600)
            #expect(plane.daemon.stop() == 0)
        }
    }
}
