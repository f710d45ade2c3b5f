import AsyncHTTPClient
import Foundation
import NIOCore
import SetuTestSupport
import Testing

/// Bodies both ways: streaming with backpressure, early answers, stalls, `Expect`, `HEAD`,
/// HTTP/1.0, and the crash this data plane replaced.
extension DataPlaneTests {
    @Suite struct Streaming {
        @Test func anEarlyAnswerDuringTwoBigUploadsNeitherCrashesNorLosesAHit() async throws {
            // Formerly: a chunked body over the limit and a 5 MB body, while the upstream answered
            // early, ended the daemon with "only allow a single Iterator to be created".
            let plane = try await DataPlane.start()
            let rounds = 4
            for _ in 0..<rounds {
                try await withThrowingTaskGroup(of: Int?.self) { group in
                    group.addTask {
                        let client = try plane.client()
                        client.send(DataPlane.head("POST", "/echo/early", extra: "Transfer-Encoding: chunked\r\n"))
                        let chunk = String(repeating: "x", count: 1 << 20)
                        for _ in 0..<11 where client.send("100000\r\n" + chunk + "\r\n") {}
                        return client.response(within: 10)?.status
                    }
                    group.addTask {
                        let client = try plane.client()
                        let size = 5_000_000
                        client.send(DataPlane.head("POST", "/echo/early-close", extra: "Content-Length: \(size)\r\n"))
                        _ = client.sendWithin(5, Array(repeating: UInt8(ascii: "y"), count: size))
                        return client.response(within: 10)?.status
                    }
                    for try await status in group {
                        #expect(status == 200 || status == 413, "\(String(describing: status))")
                    }
                }
            }
            let health = try await call(plane.daemon.admin + "/healthz", method: .GET)
            #expect(health.status == 200)
            let after = try plane.client()
            after.send(DataPlane.head("GET", "/echo/after"))
            #expect(after.response()?.status == 200)
            #expect(plane.daemon.stop() == 0)
            #expect(try plane.hits().count == 2 * rounds + 1)
        }

        @Test func aStalledUploadIs408AndItsUpstreamConnectionIsDiscarded() async throws {
            let plane = try await DataPlane.start(arguments: ["--body-timeout", "1s"], timeout: "30s")
            let client = try plane.client()
            client.send(DataPlane.head("POST", "/echo/stalled", extra: "Content-Length: 100000\r\n"))
            client.send(String(repeating: "z", count: 1000))
            let answer = client.response(within: 10)
            #expect(answer?.status == 408)
            #expect(answer?.problemType == "urn:setu:problem:body-timeout")
            #expect(client.closesWithin(5))
            // Nothing went up: 1,000 bytes are below the buffer, read whole before the upstream sees anything.
            #expect(plane.upstream.log.bytes == 0)

            // Past the buffer, the upstream has the head and part of the body; it is dropped.
            let streaming = try plane.client()
            streaming.send(DataPlane.head("POST", "/echo/stalled-big", extra: "Content-Length: 1000000\r\n"))
            streaming.send(String(repeating: "z", count: 200_000))
            #expect(streaming.response(within: 10)?.status == 408)
            for _ in 0..<50 where plane.upstream.log.closedConnections < 1 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(plane.upstream.log.connections == 1)
            #expect(plane.upstream.log.closedConnections == 1)

            let health = try await call(plane.daemon.admin + "/healthz", method: .GET)
            #expect(health.status == 200)
            #expect(plane.daemon.stop() == 0)
            let hits = try plane.hits()
            #expect(hits.map { $0["decision"] as? String } == ["deny:body-timeout", "deny:body-timeout"])
            #expect(hits.map { $0["status"] as? Int } == [408, 408])
            #expect(hits.first?["bytes_in"] as? Int == 1000)
        }

        @Test func aClientThatStopsReadingStopsTheUpstreamAndHoldsTheGatewayToAFewMiB() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            let size = 256 << 20
            client.send(DataPlane.head("GET", "/echo/stream/\(size)"))
            try await Task.sleep(for: .seconds(2))
            let streamed = plane.upstream.log.streamedBytes
            let resident = residentBytes(of: plane.daemon.process.processIdentifier)
            // Socket buffers on three connections, and the gateway's own watermarks.
            #expect(streamed < 32 << 20, "the upstream wrote \(streamed) bytes to a client that reads nothing")
            #expect(resident < 96 << 20, "the gateway holds \(resident) bytes")
            try await Task.sleep(for: .seconds(1))
            #expect(plane.upstream.log.streamedBytes - streamed < 1 << 20)
            // Reading resumes the stream.
            #expect(client.drain(64 << 20, within: 60) >= 64 << 20)
            // The upstream counts a write once it completes, which may come just after the client read it.
            for _ in 0..<50 where plane.upstream.log.streamedBytes <= 64 << 20 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(plane.upstream.log.streamedBytes > 64 << 20)
            client.close()
            #expect(plane.daemon.stop() == 0)
        }

        @Test func anUpstreamThatStopsReadingStopsTheClient() async throws {
            let plane = try await DataPlane.start(arguments: ["--max-body-bytes", "\(512 << 20)"], timeout: "6s")
            let client = try plane.client()
            let size = 256 << 20
            client.send(DataPlane.head("POST", "/echo/noread", extra: "Content-Length: \(size)\r\n"))
            let sent = client.sendWithin(3, Array(repeating: UInt8(ascii: "u"), count: size))
            let resident = residentBytes(of: plane.daemon.process.processIdentifier)
            #expect(sent < 48 << 20, "the client could send \(sent) bytes to an upstream that reads nothing")
            #expect(resident < 96 << 20, "the gateway holds \(resident) bytes")
            client.close()
            #expect(plane.daemon.stop() == 0)
        }

        @Test func expectContinueHeadAndHTTP10() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(DataPlane.head("POST", "/echo/continue", extra: "Content-Length: 5\r\nExpect: 100-continue\r\n"))
            let interim = client.response(within: 5)
            #expect(interim?.status == 100)
            client.send("hello")
            let final = client.response(within: 5)
            #expect(final?.status == 200)
            #expect(final?.text == #"{"method":"POST","uri":"/continue","bytes":5}"#)
            #expect(plane.upstream.requests.last?.header("Expect") == [])

            // Refused before the body: no 100, and the connection closes, since the body's fate is unknown.
            let refused = try plane.client()
            refused.send("POST /echo/continue HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            #expect(refused.response(within: 5)?.status == 401)
            #expect(refused.closesWithin(5))

            let head = try plane.client()
            head.send(DataPlane.head("HEAD", "/echo/stream/5000"))
            let headAnswer = head.response(within: 5, head: true)
            #expect(headAnswer?.status == 200)
            #expect(headAnswer?.header("Content-Length") == ["5000"])
            head.send(DataPlane.head("GET", "/echo/next"))
            let next = head.response(within: 5)
            #expect(next?.status == 200)
            #expect(next?.text == #"{"method":"GET","uri":"/next","bytes":0}"#)

            let old = try plane.client()
            old.send(DataPlane.head("GET", "/echo/stream/70000", version: "HTTP/1.0"))
            let oldAnswer = old.response(within: 5)
            #expect(oldAnswer?.version == "HTTP/1.0")
            #expect(oldAnswer?.header("Transfer-Encoding") == [])
            #expect(oldAnswer?.header("Content-Length") == ["70000"])
            #expect(oldAnswer?.body.count == 70000)
            #expect(old.closesWithin(5))
            #expect(plane.daemon.stop() == 0)
        }

        @Test func anAnswerWithoutALengthGoesToHTTP10ClientsUntilClose() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(DataPlane.head("GET", "/echo/chunked/200000", version: "HTTP/1.0", extra: "Connection: keep-alive\r\n"))
            #expect(client.closesWithin(10))
            let answer = RawAnswerText(client.received())
            #expect(answer.head.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(!answer.head.lowercased().contains("transfer-encoding"))
            #expect(!answer.head.lowercased().contains("content-length"))
            #expect(answer.head.contains("Connection: close\r\n"))
            #expect(answer.body.count == 200_000)

            // An HTTP/1.1 client gets it chunked, and keeps its connection.
            let modern = try plane.client()
            modern.send(DataPlane.head("GET", "/echo/chunked/200000"))
            let chunked = modern.response()
            #expect(chunked?.header("Transfer-Encoding") == ["chunked"])
            #expect(chunked?.body.count == 200_000)
            modern.send(DataPlane.head("GET", "/echo/next"))
            #expect(modern.response()?.status == 200)
            #expect(plane.daemon.stop() == 0)
        }

        @Test func anUpstreamThatBreaksOffMidAnswerEndsTheClientsConnection() async throws {
            let plane = try await DataPlane.start()
            let client = try plane.client()
            client.send(DataPlane.head("GET", "/echo/truncate"))
            #expect(client.closesWithin(5))
            #expect(client.received().hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(plane.daemon.stop() == 0)
            let hit = try #require(try plane.hits().first)
            #expect(hit["status"] as? Int == 200)
            #expect(hit["decision"] as? String == "error:upstream-reset")
        }
    }
}

/// A response read until close, split at its head's end.
struct RawAnswerText {
    var head: String
    var body: String

    init(_ text: String) {
        guard let end = text.range(of: "\r\n\r\n") else {
            head = text
            body = ""
            return
        }
        head = String(text[..<end.upperBound])
        body = String(text[end.upperBound...])
    }
}
