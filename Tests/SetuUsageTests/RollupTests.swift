import Foundation
import SetuHits
import SetuTestSupport
import Testing

@testable import SetuUsage

struct RollupTests {
    /// A hit directory over three hours of 2026-11-29 and one just past midnight, in two
    /// parts, with a corrupt line in the middle.
    func hitDirectory() throws -> (TemporaryDirectory, String) {
        let directory = TemporaryDirectory()
        let hits = directory.child("hits")
        try FileManager.default.createDirectory(atPath: hits, withIntermediateDirectories: true)
        let consumers = ["acme-bank", "swift-loans", "kisan-credit"]
        let outcomes: [(Int, String)] = [(200, "allow"), (429, "deny:rate-limited"), (504, "error:upstream-timeout"), (503, "allow")]
        var records: [HitRecord] = []
        for index in 0..<600 {
            let (status, decision) = outcomes[index % 7 == 0 ? 1 : index % 11 == 0 ? 2 : index % 13 == 0 ? 3 : 0]
            records.append(
                hit(
                    at: Int64(index) * 18_000, consumer: consumers[index % 3], api: index % 5 == 0 ? nil : "cbse/marksheet", status: status,
                    decision: decision, latency: Double(index % 97) + 0.5, upstream: decision == "allow" ? Double(index % 89) : nil,
                    bytesIn: index, bytesOut: 10 * index))
        }
        var first = lines(Array(records[..<300]))
        first += Array("{\"ts\":\"2026-11-29T10:30:00Z\",\"status\":200,\n".utf8)
        try Data(first).write(to: URL(fileURLWithPath: hits + "/hits-2026-11-29.jsonl"))
        try Data(lines(Array(records[300...]))).write(to: URL(fileURLWithPath: hits + "/hits-2026-11-29.1.jsonl"))
        return (directory, hits)
    }

    /// What a report says of each row, to compare one read from rollups with one read from hits.
    func summary(_ report: UsageReport) -> [String] {
        report.rows.map { row in
            let percentiles = [50.0, 95, 99].map {
                "\(UsageReport.Row.milliseconds(row.latency, percentile: $0) ?? -1)/\(UsageReport.Row.milliseconds(row.upstream, percentile: $0) ?? -1)"
            }
            return "\(row.key) \(row.requests) \(row.allowed) \(row.denied) \(row.errors) \(row.upstreamErrors) \(row.bytesIn) \(row.bytesOut) \(percentiles)"
        }
    }

    func queries() -> [UsageQuery] {
        var queries: [UsageQuery] = []
        for groupBy: [UsageQuery.Dimension] in [[], [.consumer], [.api, .decision], [.hour, .status], [.day, .publisher, .operation]] {
            var query = UsageQuery()
            query.groupBy = groupBy
            queries.append(query)
        }
        var filtered = UsageQuery()
        filtered.consumers = ["swift-loans"]
        filtered.statuses = [.hundreds(5)]
        filtered.groupBy = [.decision]
        queries.append(filtered)
        var denied = UsageQuery()
        denied.decisions = ["deny"]
        denied.apis = ["cbse/marksheet"]
        denied.groupBy = [.hour]
        queries.append(denied)
        // Whole hours, and a range that starts and ends inside hours.
        var hours = UsageQuery()
        hours.since = morning + 3_600_000
        hours.until = morning + 2 * 3_600_000
        hours.groupBy = [.consumer]
        queries.append(hours)
        var partial = UsageQuery()
        partial.since = morning + 1_234_567
        partial.until = morning + 2 * 3_600_000 + 600_000
        partial.groupBy = [.hour, .decision]
        queries.append(partial)
        return queries
    }

    @Test func rollupsGiveTheSameCountsAsReadingEveryHit() throws {
        let (directory, hits) = try hitDirectory()
        _ = directory
        let scanned = try queries().map { try HitLogReader.report($0, paths: [hits]) }
        #expect(scanned[0].rolledUpHits == 0)
        #expect(scanned[0].rollupNotes().first?.hasPrefix("no hourly rollups for these hit files") == true)

        let update = try HitRollups.update(hitDirectory: hits, before: morning + 86_400_000)
        #expect(update.segments == 2)
        #expect(update.lines == 601)
        #expect(update.hits == 600)
        #expect(try HitRollups.update(hitDirectory: hits, before: morning + 86_400_000) == HitRollups.UpdateSummary())

        for (query, scan) in zip(queries(), scanned) {
            let rolled = try HitLogReader.report(query, paths: [hits])
            #expect(summary(rolled) == summary(scan), "\(query.groupBy) since \(query.since ?? 0)")
            #expect(rolled.hitsCounted == scan.hitsCounted)
            #expect(rolled.corruptLines == 1)
            #expect(rolled.problems.map(\.line) == [301])
        }
        let whole = try HitLogReader.report(UsageQuery(), paths: [hits])
        #expect(whole.rolledUpHits == 600)
        #expect(whole.linesRead == 0)
        #expect(whole.unrolled.isEmpty && whole.rollupNotes().isEmpty)
        // A range inside hours reads the hit files for those hours only.
        let partial = try HitLogReader.report(queries().last!, paths: [hits])
        #expect(partial.rolledUpHits > 0 && partial.linesRead == 601)
    }

    @Test func hitsWrittenAfterAnUpdateAreReadFromTheFileAndSaidSo() throws {
        let (directory, hits) = try hitDirectory()
        _ = directory
        // The last hour is not over: its hits wait for the next update.
        try HitRollups.update(hitDirectory: hits, before: morning + 2 * 3_600_000)
        let more = lines([hit(at: 4 * 3_600_000, consumer: "swift-loans"), hit(at: 4 * 3_600_000 + 1, consumer: "swift-loans")])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: hits + "/hits-2026-11-29.1.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(more + Array("{\"ts\":\"2026-11-29T14:00".utf8)))
        try handle.close()

        var query = UsageQuery()
        query.groupBy = [.consumer]
        let report = try HitLogReader.report(query, paths: [hits])
        #expect(report.hitsCounted == 602)
        #expect(report.rolledUpHits == 400)
        #expect(report.truncatedLines == 1)
        #expect(report.unrolled == [UsageReport.Unrolled(file: hits + "/hits-2026-11-29.1.jsonl", fromLine: 101)])
        #expect(
            report.rollupNotes() == ["hourly rollups do not cover every hit yet, so these were read from the hit files: hits-2026-11-29.1.jsonl from line 101"])
        #expect(report.rows.first { $0.key == ["swift-loans"] }?.requests == 202)

        // The next update takes the rest, but not the line still being written.
        let update = try HitRollups.update(hitDirectory: hits, before: morning + 86_400_000)
        #expect(update.hits == 202)
        let after = try HitLogReader.report(query, paths: [hits])
        #expect(summary(after) == summary(report))
        #expect(after.rolledUpHits == 602)
        #expect(after.unrolled.count == 1 && after.truncatedLines == 1)
    }

    @Test func aSegmentCutShortByACrashIsIgnoredThenReplaced() throws {
        let (directory, hits) = try hitDirectory()
        _ = directory
        let scanned = try HitLogReader.report(UsageQuery(), paths: [hits])
        try HitRollups.update(hitDirectory: hits, before: morning + 86_400_000)
        let file = HitRollups.folder(of: hits) + "/rollup-2026-11-29.bin"
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        // Cut inside the second segment: the first still counts, the second part is read from hits.
        try whole.prefix(whole.count - 40).write(to: URL(fileURLWithPath: file))
        let cut = try HitLogReader.report(UsageQuery(), paths: [hits])
        #expect(summary(cut) == summary(scanned))
        #expect(cut.rolledUpHits == 300 && cut.unrolled.count == 1)
        let update = try HitRollups.update(hitDirectory: hits, before: morning + 86_400_000)
        #expect(update.hits == 300)
        let repaired = try HitLogReader.report(UsageQuery(), paths: [hits])
        #expect(summary(repaired) == summary(scanned))
        #expect(repaired.rolledUpHits == 600)

        try Data("something else".utf8).write(to: URL(fileURLWithPath: file))
        #expect {
            try HitLogReader.report(UsageQuery(), paths: [hits])
        } throws: { error in
            "\(error)" == "\(file) is not a Setu rollup file: remove it and run `setu rollup` to make it again"
        }
    }
}
