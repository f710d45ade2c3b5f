import Foundation
import SetuHits
import SetuTestSupport
import Testing

@testable import SetuUsage

/// 2026-11-29T10:00:00Z.
let morning: Int64 = 1_795_946_400_000

/// A hit as the gateway logs it.
func hit(
    at offset: Int64 = 0, consumer: String? = "acme-bank", api: String? = "cbse/marksheet", status: Int = 200,
    decision: String = "allow", latency: Double = 10, upstream: Double? = 8, bytesIn: Int = 100, bytesOut: Int = 1000
) -> HitRecord {
    var record = HitRecord(
        timestampMilliseconds: morning + offset, requestId: "r\(offset)", configRevision: "abc", method: "POST",
        path: "/cbse/v1/marksheet", clientIP: "127.0.0.1")
    record.consumer = consumer
    record.api = api
    record.publisher = api?.split(separator: "/").first.map(String.init)
    record.status = status
    record.decision = decision
    record.latencyMilliseconds = latency
    record.upstreamMilliseconds = upstream
    record.bytesIn = bytesIn
    record.bytesOut = bytesOut
    return record
}

func lines(_ records: [HitRecord]) -> [UInt8] {
    records.enumerated().flatMap { $0.element.jsonLine(sequence: UInt64($0.offset + 1)) }
}

func parse(_ text: String) -> Result<UsageHit, HitLine.Failure> {
    Array(text.utf8).withUnsafeBufferPointer(HitLine.parse)
}

struct HitLineTests {
    @Test func aLineTheGatewayWroteReadsBackWithEveryFieldUsageNeeds() throws {
        var record = hit(at: 1234, consumer: "quote\"and\\slash", latency: 12.345, upstream: nil)
        record.operation = "getMarksheet"
        let line = record.jsonLine(sequence: 7)
        let parsed = try Array(line.dropLast()).withUnsafeBufferPointer(HitLine.parse).get()
        #expect(parsed.milliseconds == morning + 1234)
        #expect(parsed.consumer == "quote\"and\\slash")
        #expect(parsed.api == "cbse/marksheet")
        #expect(parsed.publisher == "cbse")
        #expect(parsed.operation == "getMarksheet")
        #expect(parsed.status == 200)
        #expect(parsed.decision == "allow")
        #expect(parsed.latencyMicroseconds == 12_345)
        #expect(parsed.upstreamMicroseconds == nil)
        #expect(parsed.bytesIn == 100)
        #expect(parsed.bytesOut == 1000)
    }

    @Test func linesBeyondTheWritersUsualOnesReadTheSame() throws {
        var record = hit(at: 5, status: 201)
        record.consentId = "consent-1"
        record.validation = "passed"
        let line = String(decoding: record.jsonLine(sequence: 1).dropLast(), as: UTF8.self)
        #expect(line.hasSuffix(#""consent_id":"consent-1","validation":"passed"}"#))
        let written = try parse(line).get()
        #expect(written.status == 201 && written.milliseconds == morning + 5 && written.bytesOut == 1000)
        // Spaced out, and a field given again (the last one counts): read key by key.
        #expect(try parse(line.replacingOccurrences(of: ",", with: " , ")).get() == written)
        #expect(try parse(String(line.dropLast()) + #","status":503}"#).get().status == 503)
    }

    @Test func escapesAndUnknownFieldsAreRead() throws {
        let parsed = try parse(
            #"{"ts":"2026-11-29T10:00:00Z","new":{"a":[1,"}"]},"path":"/a\"},\\","consumer":"\u00e9\ud83d\ude00\n","status":404,"decision":"deny:no-route","latency_ms":0.5,"extra":-1.5e3}"#
        ).get()
        #expect(parsed.consumer == "é😀\n")
        #expect(parsed.milliseconds == morning)
        #expect(parsed.latencyMicroseconds == 500)
    }

    @Test func stringsOfAnyLengthWithAQuoteOrBackslashAnywhereReadBack() throws {
        for length in 0...20 {
            for place in 0...length {
                var consumer = String(repeating: "c", count: length)
                consumer.insert(place.isMultiple(of: 2) ? "\"" : "\\", at: consumer.index(consumer.startIndex, offsetBy: place))
                let line = hit(consumer: consumer).jsonLine(sequence: 1).dropLast()
                let parsed = try Array(line).withUnsafeBufferPointer(HitLine.parse).get()
                #expect(parsed.consumer == consumer)
                #expect(parsed.api == "cbse/marksheet")
            }
        }
    }

    @Test func theWritersLastKeysAreReadToTheLinesEndAndEveryCutIsRefused() throws {
        var record = hit()
        record.clientIP = ""
        let line = Array(record.jsonLine(sequence: 1).dropLast())
        #expect(try line.withUnsafeBufferPointer(HitLine.parse).get().bytesOut == 1000)
        for cut in 0..<line.count {
            #expect(throws: HitLine.Failure.self) { try Array(line[..<cut]).withUnsafeBufferPointer(HitLine.parse).get() }
        }
    }

    @Test(arguments: [
        ("", "the line ends before a JSON object"),
        ("[1]", "expected a JSON object at byte 1"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":200}"#, "no \"decision\" field"),
        (#"{"ts":"yesterday","status":200,"decision":"allow"}"#, "\"ts\" is not a time like 2026-11-29T08:15:02.123Z: yesterday"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":"200","decision":"allow"}"#, "expected a whole number at byte 43"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":200,"decision":"allow"} x"#, "text after the object at byte 67"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":200,"decis"#, "the line ends inside a key"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":18446744073709551615,"decision":"allow"}"#, "\"status\" is out of range at byte 43"),
        (#"{"ts":"2026-11-29T10:00:00.000Z","status":200,"decision":"allow","latency_ms":18446744073709551.615}"#, "\"latency_ms\" is out of range at byte 79"),
    ])
    func aLineThatIsNotAHitSaysWhy(line: String, reason: String) {
        #expect(parse(line) == .failure(HitLine.Failure(reason: reason)))
    }
}

struct UsageReportTests {
    /// Two replicas' hit directories: the first with a rotated part, a corrupt line and a
    /// truncated last line, and a file that is not a hit file, which is not read.
    func replicas() throws -> (TemporaryDirectory, [String]) {
        let directory = TemporaryDirectory()
        let a = directory.child("a/hits"), b = directory.child("b/hits")
        for folder in [a, b] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        // 100 allowed hits 0.6 s apart, taking 1…100 ms, in two parts.
        let allowed = (1...100).map { hit(at: Int64($0) * 600, latency: Double($0), upstream: Double($0) / 2) }
        try Data(lines(Array(allowed[..<50]))).write(to: URL(fileURLWithPath: a + "/hits-2026-11-29.jsonl"))
        var second = lines(Array(allowed[50...]))
        second += Array("{\"ts\":\"2026-11-29T10:00:00Z\",\"status\":200,\n".utf8)
        second += lines([
            hit(at: 70_000, consumer: "swift-loans", status: 429, decision: "deny:rate-limited", upstream: nil, bytesOut: 200),
            hit(at: 70_001, consumer: "swift-loans", status: 429, decision: "deny:rate-limited", upstream: nil, bytesOut: 200),
        ])
        second += Array("{\"ts\":\"2026-11-29T10:01".utf8)
        try Data(second).write(to: URL(fileURLWithPath: a + "/hits-2026-11-29.1.jsonl"))
        try Data("not hits\n".utf8).write(to: URL(fileURLWithPath: a + "/notes.txt"))
        try Data(
            lines([
                hit(at: 3_600_000, consumer: nil, api: nil, status: 404, decision: "deny:no-route", upstream: nil),
                hit(at: 3_600_001, status: 504, decision: "error:upstream-timeout", upstream: nil),
                hit(at: 3_600_002, status: 503, decision: "allow", upstream: 4),
                hit(at: 86_400_000, consumer: "swift-loans"),
            ])
        ).write(to: URL(fileURLWithPath: b + "/hits-2026-11-29.jsonl"))
        return (directory, [a, b])
    }

    @Test func aKnownLogCountsToTheExactNumberByAPIAndSaysWhatItSkipped() throws {
        let (directory, paths) = try replicas()
        _ = directory
        var query = UsageQuery()
        query.groupBy = [.api]
        let files = try HitLogReader.files(in: paths)
        #expect(files.map { URL(fileURLWithPath: $0).lastPathComponent } == ["hits-2026-11-29.jsonl", "hits-2026-11-29.1.jsonl", "hits-2026-11-29.jsonl"])
        let report = try HitLogReader.report(query, files: files)
        #expect(report.rows.map(\.key) == [["-"], ["cbse/marksheet"]])
        let marksheet = report.rows[1]
        #expect(marksheet.requests == 105)
        #expect(marksheet.allowed == 102)
        #expect(marksheet.denied == ["rate-limited": 2])
        #expect(marksheet.errors == ["upstream-timeout": 1])
        #expect(marksheet.upstreamErrors == 2)
        #expect(marksheet.bytesIn == 10_500)
        #expect(marksheet.bytesOut == 103 * 1000 + 2 * 200)
        #expect(marksheet.latency.totalCount == 105)
        #expect(marksheet.upstream.totalCount == 102)
        #expect(report.rows[0].denied == ["no-route": 1])
        #expect(report.linesRead == 108)
        #expect(report.hitsCounted == 106)
        #expect(report.corruptLines == 1)
        #expect(report.truncatedLines == 1)
        #expect(report.problems.map(\.line) == [51, 54])
        #expect(report.problems.map(\.truncated) == [false, true])
        #expect(report.problemLines()[0].hasSuffix("hits-2026-11-29.1.jsonl:51: corrupt line: the line ends before a key"))
        #expect(report.summary() == "3 files, 108 lines read, 106 hits counted; 1 corrupt line skipped; 1 truncated last line skipped")
    }

    @Test func rowsOfThousandsOfHitsWithEscapedNamesCountEveryTime() throws {
        let directory = TemporaryDirectory()
        // 1000 hits of 1…1000 ms in two files, so two threads each hold some of a row's times.
        let records = (1...1000).map { number in
            hit(
                at: Int64(number), consumer: number.isMultiple(of: 2) ? "bank \"even\"" : "bank\\odd", latency: Double(number),
                upstream: number > 990 ? nil : Double(number) / 2)
        }
        for (name, range) in [("hits-2026-11-29.jsonl", 0..<500), ("hits-2026-11-29.1.jsonl", 500..<1000)] {
            try Data(lines(Array(records[range]))).write(to: URL(fileURLWithPath: directory.child(name)))
        }
        // A decision spelled with an escape is still the same decision.
        try Data(#"{"ts":"2026-11-29T10:00:02.000Z","consumer":"bank\\odd","status":200,"decision":"allo\u0077","latency_ms":1}"#.utf8 + [0x0A])
            .write(to: URL(fileURLWithPath: directory.child("hits-2026-11-29.2.jsonl")))
        var query = UsageQuery()
        query.groupBy = [.consumer]
        let report = try HitLogReader.report(query, paths: [directory.path])
        #expect(report.rows.map(\.key) == [["bank \"even\""], ["bank\\odd"]])
        #expect(report.rows.map(\.requests) == [500, 501])
        #expect(report.rows.map(\.allowed) == [500, 501])
        #expect(report.rows.map(\.latency.totalCount) == [500, 501])
        #expect(report.rows.map(\.upstream.totalCount) == [495, 495])
        let even = report.rows[0]
        // Two significant digits: within 1% of 500 ms and 990 ms.
        #expect(abs(try #require(UsageReport.Row.milliseconds(even.latency, percentile: 50)) - 500) <= 5)
        #expect(abs(try #require(UsageReport.Row.milliseconds(even.latency, percentile: 99)) - 990) <= 9.9)
        #expect(abs(try #require(UsageReport.Row.milliseconds(even.upstream, percentile: 100)) - 495) <= 4.95)
    }

    @Test func filtersAndTheTimeRangeChooseTheHitsCounted() throws {
        let (directory, paths) = try replicas()
        _ = directory
        let files = try HitLogReader.files(in: paths)
        var query = UsageQuery()
        query.statuses = [.hundreds(4)]
        query.groupBy = [.consumer, .decision]
        var report = try HitLogReader.report(query, files: files)
        #expect(report.rows.map(\.key) == [["-", "deny:no-route"], ["swift-loans", "deny:rate-limited"]])
        #expect(report.rows.map(\.requests) == [1, 2])

        query = UsageQuery()
        query.decisions = ["error"]
        #expect(try HitLogReader.report(query, files: files).hitsCounted == 1)
        query.decisions = ["deny:rate-limited", "allow"]
        #expect(try HitLogReader.report(query, files: files).hitsCounted == 104)

        query = UsageQuery()
        query.since = morning + 3_600_000
        query.until = morning + 86_400_000
        query.groupBy = [.hour]
        report = try HitLogReader.report(query, files: files)
        #expect(report.rows.map(\.key) == [["2026-11-29T11:00Z"]])
        #expect(report.rows.map(\.requests) == [3])

        query = UsageQuery()
        query.consumers = ["swift-loans"]
        query.groupBy = [.day]
        report = try HitLogReader.report(query, files: files)
        #expect(report.rows.map(\.key) == [["2026-11-29"], ["2026-11-30"]])
        #expect(report.rows.map(\.requests) == [2, 1])
    }

    @Test func aFileThatIsNotAHitLogIsRefusedWithWhereAndWhy() throws {
        let directory = TemporaryDirectory()
        let file = directory.child("access.log")
        try Data("127.0.0.1 - - [29/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect {
            try HitLogReader.report(UsageQuery(), files: HitLogReader.files(in: [file]))
        } throws: { error in
            "\(error)" == "\(file) is not a Setu hit log: line 1: expected a JSON object at byte 1. "
                + "Name the hit directory (<state>/hits) or its hits-YYYY-MM-DD.jsonl files"
        }
        #expect {
            try HitLogReader.files(in: [directory.child("missing")])
        } throws: { error in
            "\(error)".hasSuffix("missing does not exist: name a hit directory (<state>/hits) or a hit file")
        }
    }

    @Test func outputsAreATableCSVAndJSON() throws {
        let (directory, paths) = try replicas()
        _ = directory
        var query = UsageQuery()
        query.groupBy = [.consumer]
        query.consumers = ["swift-loans"]
        let report = try HitLogReader.report(query, files: HitLogReader.files(in: paths))
        let table = report.table().split(separator: "\n").map(String.init)
        #expect(table[0].hasPrefix("consumer     requests  allowed  denied  errors  upstream_errors  p50_ms"))
        #expect(table[1].hasPrefix("swift-loans         3        1       2       0                0  10.000"))
        #expect(table[1].hasSuffix("rate-limited=2"))
        let csv = report.csv().components(separatedBy: "\r\n")
        #expect(csv[0] == "consumer," + UsageReport.counts.joined(separator: ","))
        #expect(csv[1] == "swift-loans,3,1,2,0,0,10.000,10.000,10.000,8.000,8.000,8.000,300,1400,rate-limited=2")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let rows = try #require(json["rows"] as? [[String: Any]])
        #expect(rows.first?["group"] as? [String: String] == ["consumer": "swift-loans"])
        #expect(rows.first?["denied"] as? [String: Int] == ["rate-limited": 2])
        #expect((rows.first?["latencyMs"] as? [String: Double])?["p99"] == 10)
        #expect(json["truncatedLines"] as? Int == 1)
    }

    @Test func percentilesComeFromAnHdrHistogramToTwoSignificantDigits() throws {
        var row = UsageReport.Row(key: [])
        for milliseconds in 1...100 {
            row.count(try parse(String(decoding: hit(latency: Double(milliseconds)).jsonLine(sequence: 1).dropLast(), as: UTF8.self)).get())
        }
        let p50 = try #require(UsageReport.Row.milliseconds(row.latency, percentile: 50))
        let p95 = try #require(UsageReport.Row.milliseconds(row.latency, percentile: 95))
        let p99 = try #require(UsageReport.Row.milliseconds(row.latency, percentile: 99))
        // Two significant digits: each within 1%.
        #expect(abs(p50 - 50) <= 0.5 && abs(p95 - 95) <= 0.95 && abs(p99 - 99) <= 0.99)
        #expect(UsageReport.Row.milliseconds(UsageReport.Row(key: []).upstream, percentile: 50) == nil)
    }

    @Test func timesAreDaysTimesOrDurationsBackFromNow() {
        #expect(UsageQuery.time("2026-11-29", now: 0) == morning - 10 * 3_600_000)
        #expect(UsageQuery.time("2026-11-29T10:00:00Z", now: 0) == morning)
        #expect(UsageQuery.time("2026-11-29T10:00:00.5Z", now: 0) == morning + 500)
        #expect(UsageQuery.time("24h", now: morning) == morning - 86_400_000)
        #expect(UsageQuery.time("90m", now: morning) == morning - 90 * 60_000)
        #expect(UsageQuery.time("7d", now: morning) == morning - 7 * 86_400_000)
        #expect(UsageQuery.time("yesterday", now: morning) == nil)
        #expect(UsageQuery.time("999999999999999d", now: morning) == nil)
        #expect(UsageQuery.time("2026-13-01", now: morning) == nil)
        #expect(UsageQuery.StatusFilter("4xx") == .hundreds(4))
        #expect(UsageQuery.StatusFilter("429") == .exact(429))
        #expect(UsageQuery.StatusFilter("6xx") == nil)
    }
}
