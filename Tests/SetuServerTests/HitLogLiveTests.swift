import AsyncHTTPClient
import Foundation
import SetuTestSupport
import Testing

/// The hit log of a running daemon: nothing lost on shutdown, rotation or reopening.
@Suite(.serialized) struct HitLogLiveTests {
    let pan = "/pan/v3/pancr/certificate"

    @Test func nRequestsThenSigtermLeaveExactlyNLines() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        let revision = try await call(daemon.admin + "/status", method: .GET).body
        let count = 300
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<count {
                group.addTask {
                    let headers = index % 3 == 0 ? credentials("acme-bank-prod", key: "wrong") : credentials("acme-bank-prod")
                    return try await call(daemon.gateway + pan, headers: headers + [("X-Request-ID", "n-\(index)")], body: "{}").status
                }
            }
            for try await _ in group {}
        }
        #expect(daemon.stop() == 0)
        let lines = try hitLines(in: daemon.hitDirectory)
        #expect(lines.count == count)
        #expect(lines.compactMap { $0["seq"] as? Int }.sorted() == Array(1...count))
        #expect(Set(lines.compactMap { $0["request_id"] as? String }) == Set((0..<count).map { "n-\($0)" }))
        for line in lines {
            let denied = (line["status"] as? Int) == 401
            #expect(line["decision"] as? String == (denied ? "deny:invalid-credentials" : "allow"))
            #expect(line["api"] as? String == "incometax/pan-verification")
            #expect(line["method"] as? String == "POST")
            #expect(line["path"] as? String == pan)
            #expect(line["client_ip"] as? String == "127.0.0.1")
            #expect((line["ts"] as? String)?.hasSuffix("Z") == true)
            #expect(revision.contains(line["config_rev"] as? String ?? "none"))
            #expect(line["latency_ms"] is Double)
            #expect(line["consumer"] as? String == (denied ? nil : "acme-bank"))
        }
        await upstream.stop()
    }

    @Test func theDaemonRollsUpHoursThatAreOverWhenItStarts() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let state = TemporaryDirectory()
        let hits = state.child("state/hits")
        try FileManager.default.createDirectory(atPath: hits, withIntermediateDirectories: true)
        // An earlier run's hits, of a day long over.
        let line =
            #"{"ts":"2026-11-29T10:00:00.000Z","seq":1,"request_id":"r","config_rev":"abc","consumer":"acme-bank","client_id":"c","api":"cbse/marksheet","publisher":"cbse","category":"document","operation":null,"method":"POST","path":"/cbse/v1/m","status":200,"decision":"allow","latency_ms":4.000,"upstream_ms":3.000,"bytes_in":10,"bytes_out":20,"client_ip":"127.0.0.1"}"#
            + "\n"
        try Data(String(repeating: line, count: 5).utf8).write(to: URL(fileURLWithPath: hits + "/hits-2026-11-29.jsonl"))
        let daemon = try await RunningDaemon.start(repo: marketplace.path, state: state)
        var rolled = false
        for _ in 0..<200 where !rolled {
            rolled = FileManager.default.fileExists(atPath: hits + "/rollups/rollup-2026-11-29.bin")
            if !rolled { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(rolled)
        let usage = try run(setuExecutable(), ["usage", hits, "--until", "2026-11-30", "--format", "json"])
        #expect(usage.stdout.contains(#""rolledUpHits" : 5"#))
        #expect(daemon.stop() == 0)
        await upstream.stop()
    }

    @Test func requestsInFlightFinishAfterSigterm() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path)
        async let slow = call(
            daemon.gateway + "/transport/v3/driving-licence/drvlc/certificate",
            headers: credentials("swift-loans-prod"), body: "{}")
        // Signalled once the request is in flight: the upstream has it.
        for _ in 0..<100 where upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        daemon.signal(SIGTERM)
        let answer = try await slow
        #expect(answer.status == 504)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)
        #expect(try hitLines(in: daemon.hitDirectory).map { $0["status"] as? Int } == [504])
        await upstream.stop()
    }

    @Test func rotationAndSigusr1UnderLoadLoseNoLine() async throws {
        let upstream = try await TestUpstream.start()
        let marketplace = try LiveMarketplace(upstreamPort: upstream.port)
        let daemon = try await RunningDaemon.start(repo: marketplace.path, arguments: ["--hits-max-file-bytes", "8192"])
        let rotated = daemon.state.child("rotated")
        try FileManager.default.createDirectory(atPath: rotated, withIntermediateDirectories: true)
        let count = 1200
        let rotator = Task {
            // What logrotate does: move the files away, then ask for a reopen.
            var round = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(40))
                round += 1
                for name in (try? FileManager.default.contentsOfDirectory(atPath: daemon.hitDirectory))?.filter({ $0.hasPrefix("hits-") }) ?? [] {
                    try? FileManager.default.moveItem(atPath: daemon.hitDirectory + "/" + name, toPath: rotated + "/\(round)-" + name)
                }
                daemon.signal(SIGUSR1)
            }
            return round
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: count, by: 8) {
                        _ = try await call(daemon.gateway + pan, headers: credentials("acme-bank-prod") + [("X-Request-ID", "r-\(index)")], body: "{}")
                    }
                }
            }
            try await group.waitForAll()
        }
        rotator.cancel()
        let rounds = await rotator.value
        #expect(daemon.stop() == 0)
        var lines: [[String: Any]] = []
        for directory in [rotated, daemon.hitDirectory] {
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.contains("hits-") {
                let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
                for line in text.split(separator: "\n") {
                    lines.append(try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]))
                }
            }
        }
        #expect(rounds > 3)
        #expect(lines.count == count)
        #expect(lines.compactMap { $0["seq"] as? Int }.sorted() == Array(1...count))
        #expect(Set(lines.compactMap { $0["request_id"] as? String }).count == count)
        await upstream.stop()
    }
}
