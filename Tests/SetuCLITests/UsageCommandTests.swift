import Foundation
import SetuTestSupport
import Testing

/// `setu usage` run as a user runs it, on a hit directory as the gateway writes it.
struct UsageCommandTests {
    /// Three hits of one day, and the start of a fourth cut short.
    func hitDirectory() throws -> TemporaryDirectory {
        let directory = TemporaryDirectory()
        let hits = directory.child("hits")
        try FileManager.default.createDirectory(atPath: hits, withIntermediateDirectories: true)
        func line(_ ts: String, _ consumer: String, _ status: Int, _ decision: String, _ latency: String) -> String {
            #"{"ts":"\#(ts)","seq":1,"request_id":"r","config_rev":"abc","consumer":"\#(consumer)","client_id":"c","api":"cbse/marksheet","publisher":"cbse","category":"document","operation":null,"method":"POST","path":"/cbse/v1/m","status":\#(status),"decision":"\#(decision)","latency_ms":\#(latency),"upstream_ms":null,"bytes_in":10,"bytes_out":20,"client_ip":"127.0.0.1"}"#
                + "\n"
        }
        let text =
            line("2026-11-29T10:00:00.000Z", "acme-bank", 200, "allow", "4.000")
            + line("2026-11-29T10:00:01.000Z", "acme-bank", 200, "allow", "6.000")
            + line("2026-11-29T10:00:02.000Z", "swift-loans", 429, "deny:rate-limited", "0.500")
            + #"{"ts":"2026-11-29T10:00:03.000Z","seq":4,"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: hits + "/hits-2026-11-29.jsonl"))
        return directory
    }

    @Test func usageGroupsTheHitsAndWarnsOfTheTruncatedLine() throws {
        let directory = try hitDirectory()
        let result = try setu("usage", directory.child("hits"), "--by", "consumer", "--since", "2026-11-29", "--until", "2026-11-30")
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[1].hasPrefix("acme-bank           2        2       0       0                0   4.015   6.000   6.000"))
        #expect(lines[2].hasSuffix("rate-limited=1"))
        #expect(lines[3] == "1 file, 4 lines read, 3 hits counted; 1 truncated last line skipped")
        #expect(result.stderr.contains("hits-2026-11-29.jsonl:4: truncated last line: the line ends before a key"))
        let csv = try setu("usage", directory.child("hits"), "--by", "decision", "--format", "csv")
        #expect(csv.stdout.split(separator: "\r\n").count == 3)
        let json = try setu("usage", directory.child("hits"), "--format", "json", "--status", "4xx")
        #expect(json.status == 0)
        #expect(json.stdout.contains(#""hitsCounted" : 1"#))
    }

    @Test func usageSaysWhatIsWrongWithItsInput() throws {
        let directory = try hitDirectory()
        let help = try setu("usage", "--help")
        #expect(help.status == 0)
        #expect(help.stdout.contains("Count the gateway's hits"))
        let column = try setu("usage", directory.child("hits"), "--by", "country")
        #expect(column.status == 2)
        #expect(column.stderr.contains("--by country is not a column: use consumer, api, publisher, operation, day, hour, status, decision"))
        let since = try setu("usage", directory.child("hits"), "--since", "last tuesday")
        #expect(since.status == 2)
        #expect(since.stderr.contains("--since last tuesday is not a time"))
        let future = try setu("usage", directory.child("hits"), "--since", "2099-01-01")
        #expect(future.status == 0)
        #expect(future.stdout.hasSuffix("0 files, 0 lines read, 0 hits counted\n"))
        let notes = directory.child("notes.txt")
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: notes))
        let notALog = try setu("usage", notes)
        #expect(notALog.status == 2)
        #expect(
            notALog.stderr
                == "error: \(notes) is not a Setu hit log: line 1: expected a JSON object at byte 1. Name the hit directory (<state>/hits) or its hits-YYYY-MM-DD.jsonl files\n"
        )
    }

    @Test func rollupMakesTheHourlyRollupsThatUsageThenReads() throws {
        let directory = try hitDirectory()
        let hits = directory.child("hits")
        let before = try setu("usage", hits, "--by", "consumer")
        #expect(before.stderr.contains("note: no hourly rollups for these hit files, so every hit was read"))
        let rollup = try setu("rollup", hits)
        #expect(rollup.status == 0)
        #expect(rollup.stdout == "\(hits): rolled up 3 hits of 3 lines into 2 rows\n")
        #expect(FileManager.default.fileExists(atPath: hits + "/rollups/rollup-2026-11-29.bin"))
        let after = try setu("usage", hits, "--by", "consumer")
        #expect(after.status == 0)
        // The same rows; only the line cut short is still read from the hit file, and said.
        #expect(after.stdout.split(separator: "\n").dropLast() == before.stdout.split(separator: "\n").dropLast())
        #expect(after.stdout.hasSuffix("1 file, 1 lines read, 3 hits counted (3 from 2 hourly rollup rows); 1 truncated last line skipped\n"))
        #expect(after.stderr.contains("these were read from the hit files: hits-2026-11-29.jsonl from line 4"))
        let everyHit = try setu("usage", hits, "--by", "consumer", "--read-hits")
        #expect(everyHit.stdout == before.stdout)
        #expect(!everyHit.stderr.contains("note:"))
        let missing = try setu("rollup", directory.child("nowhere"))
        #expect(missing.status == 2)
        #expect(missing.stderr == "error: \(directory.child("nowhere")) is not a directory: name a hit directory (<state>/hits)\n")
    }
}
