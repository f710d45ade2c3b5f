import Foundation
import SetuTestSupport
import Testing

/// `setu demo` end to end: the curl commands it prints do what it says they do.
struct DemoLiveTests {
    /// Splits a printed shell command into words (single quotes only, as the demo prints them).
    func words(_ line: String) -> [String] {
        var words: [String] = [], current = "", quoted = false, started = false
        for character in line {
            if character == "'" { quoted.toggle(); started = true; continue }
            if character == " " && !quoted {
                if started { words.append(current) }
                current = ""; started = false
                continue
            }
            current.append(character); started = true
        }
        if started { words.append(current) }
        return words
    }

    func perform(_ line: String) async throws -> Answer {
        let parts = words(line.trimmingCharacters(in: .whitespaces))
        var headers: [(String, String)] = [], body: String?, url = ""
        var index = 1
        while index < parts.count {
            switch parts[index] {
            case "-i": index += 1
            case "-X": index += 2
            case "-H":
                let header = parts[index + 1]
                let colon = header.firstIndex(of: ":")!
                headers.append((String(header[..<colon]), header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
                index += 2
            case "-d": body = parts[index + 1]; index += 2
            default: url = parts[index]; index += 1
            }
        }
        return try await call(url, headers: headers, body: body)
    }

    @Test func thePrintedCallsAndApprovalDoWhatTheDemoSays() async throws {
        let state = TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: setuExecutable())
        process.arguments = [
            "demo", "--example", projectRoot.path, "--state", state.child("demo"),
            "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        ]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let output = TextBuffer()
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.append(String(decoding: data, as: UTF8.self))
            }
        }
        for _ in 0..<600 where !output.text.contains("curl -X POST") {
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = output.text
        let calls = text.split(separator: "\n").filter { $0.hasPrefix("  curl -i") }.map(String.init)
        try #require(calls.count == 7, "\(text)")
        let admin = try #require(text.split(separator: "\n").first { $0.hasPrefix("  curl http://") && $0.hasSuffix("/readyz") })
        for _ in 0..<100 {
            if (try? await call(String(admin.dropFirst("  curl ".count)), method: .GET))?.status == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }

        let success = try await perform(calls[0])
        #expect(success.status == 200)
        #expect(success.body.contains(#"<Certificate language="99" name="PAN Verification Record" type="PANCR" number="ABCDE1234F""#))
        #expect(success.body.contains(#"requester="acme-bank""#))
        // A second demo on the same folder touches nothing of the running one.
        let second = try run(
            setuExecutable(),
            [
                "demo", "--example", projectRoot.path, "--state", state.child("demo"),
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            ])
        #expect(second.status == 2)
        #expect(second.stderr.contains("another setu demo is running on \(state.child("demo")); stop it first"), "\(second.stderr)")
        #expect(FileManager.default.fileExists(atPath: state.child("demo/marketplace/.git")))
        #expect(try await perform(calls[0]).status == 200)
        let pending = try await perform(calls[1])
        #expect(pending.status == 403)
        #expect(pending.problemType == "urn:setu:problem:pending-approval")
        let anonymous = try await perform(calls[2])
        #expect(anonymous.status == 401)
        #expect(anonymous.problemType == "urn:setu:problem:missing-credentials")

        // The partner's consent token, from the sample consent provider, then the call with it.
        let tokenLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("  TOKEN=$(curl -s '") })
        let tokenURL = String(tokenLine.dropFirst("  TOKEN=$(curl -s '".count).dropLast(2))
        let token = try await call(tokenURL, method: .GET)
        #expect(token.status == 200)
        let withToken = {
            try await perform(
                calls[3].replacingOccurrences(
                    of: #""Authorization: Bearer $TOKEN""#,
                    with: "'Authorization: Bearer \(token.body)'"))
        }
        var consented = try await withToken()
        for _ in 0..<40 where consented.problemType == "urn:setu:problem:consent-unknown-key" {
            // The provider's JWKS is fetched just after the first reconcile.
            try await Task.sleep(for: .milliseconds(250))
            consented = try await withToken()
        }
        #expect(consented.status == 200, "\(consented.body)")
        #expect(consented.body.contains(#"name="Class XII Marksheet""#))
        #expect(consented.body.contains(#"requester="edu-verify""#))
        let replayed = try await withToken()
        #expect(replayed.status == 401)
        #expect(replayed.problemType == "urn:setu:problem:consent-replayed")
        let withoutConsent = try await perform(calls[4])
        #expect(withoutConsent.status == 403)
        #expect(withoutConsent.problemType == "urn:setu:problem:consent-required")
        // The printed loop of 40, sent at once.
        let limitedCall = calls[5]
        let limited = try await withThrowingTaskGroup(of: Answer.self) { group in
            for _ in 0..<40 { group.addTask { try await perform(limitedCall) } }
            return try await group.reduce(into: [Answer]()) { $0.append($1) }
        }
        #expect(limited.filter { $0.status == 200 }.count >= 20)
        #expect(limited.first { $0.status == 200 }?.headers["RateLimit-Policy"].first?.hasPrefix(#""rate";q=20;w=2"#) == true)
        let refused = try #require(limited.first { $0.status == 429 })
        #expect(refused.problemType == "urn:setu:problem:rate-limited")
        #expect(refused.headers["Retry-After"] == ["1"])
        let invalid = try await perform(calls[6])
        #expect(invalid.status == 400)
        #expect(invalid.problem["pointer"] as? String == "/format")

        // The printed approval: the git lines as printed, the reconcile through our own client.
        let approval = text.split(separator: "\n").drop { !$0.hasPrefix("Approve it") }
            .filter { $0.hasPrefix("  git ") || $0.hasPrefix("  printf ") }
        #expect(approval.count == 5)
        for line in approval {
            let result = try run("/bin/sh", ["-c", String(line)])
            #expect(result.status == 0, "\(line): \(result.stderr)")
        }
        let reconcileLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("  curl -X POST ") })
        let reconciled = try await call(String(reconcileLine.dropFirst("  curl -X POST ".count)))
        #expect(reconciled.status == 200)
        let approved = try await perform(calls[1])
        #expect(approved.status == 200)
        #expect(approved.body.contains(#"name="Registration of Vehicles""#))

        let log = try run("/usr/bin/git", ["-C", state.child("demo/marketplace"), "log", "--first-parent", "--format=%ae %s", "main"])
        #expect(log.stdout.contains("registrar@cbse.example Approve acme-bank's subscription to cbse/class-xii-marksheet"))
        #expect(log.stdout.contains("admin@setu.example Admit publisher cbse"))
        #expect(log.stdout.contains("cto@swiftloans.example Subscribe to transport/vehicle-registration"))
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let statuses = try hitLines(in: state.child("demo/hits")).compactMap { $0["status"] as? Int }
        #expect(Array(statuses.prefix(4)) == [200, 200, 403, 401])
        #expect(statuses.last == 200)
        #expect(statuses.contains(429) && statuses.contains(400))
    }
}
