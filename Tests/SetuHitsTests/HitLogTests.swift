import Foundation
import SetuFormats
import SetuHits
import SetuTestSupport
import Testing

func sampleHit(_ index: Int, at milliseconds: Int64 = 1_795_920_494_000) -> HitRecord {
    var hit = HitRecord(
        timestampMilliseconds: milliseconds, requestId: "req-\(index)", configRevision: "abc123",
        method: "POST", path: "/pan/v3/pancr/certificate", clientIP: "127.0.0.1")
    hit.consumer = "acme-bank"
    hit.clientId = "acme-bank-prod"
    hit.api = "incometax/pan-verification"
    hit.publisher = "incometax"
    hit.category = "service"
    hit.operation = "pancr"
    hit.status = 200
    hit.latencyMilliseconds = 1.25
    hit.upstreamMilliseconds = 0.5
    hit.bytesIn = 10
    hit.bytesOut = 20
    return hit
}

struct HitLogTests {
    @Test func aLineHasEveryFieldInOrder() {
        var hit = sampleHit(1)
        hit.consentId = "consent-9"
        hit.decision = "deny:\"quoted\"\n"
        let line = String(decoding: hit.jsonLine(sequence: 7), as: UTF8.self)
        #expect(
            line
                == #"{"ts":"2026-11-29T02:48:14.000Z","seq":7,"request_id":"req-1","config_rev":"abc123","consumer":"acme-bank","client_id":"acme-bank-prod","api":"incometax/pan-verification","publisher":"incometax","category":"service","operation":"pancr","method":"POST","path":"/pan/v3/pancr/certificate","status":200,"decision":"deny:\"quoted\"\n","latency_ms":1.250,"upstream_ms":0.500,"bytes_in":10,"bytes_out":20,"client_ip":"127.0.0.1","consent_id":"consent-9"}"#
                + "\n")
    }

    @Test func timestampsAreUTCCalendarDays() {
        #expect(Timestamp.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.rfc3339(milliseconds: 951_782_400_123) == "2000-02-29T00:00:00.123Z")
        #expect(Timestamp.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.daysSinceEpoch(of: "2026-11-29") == 20_786)
        #expect(Timestamp.day(daysSinceEpoch: 20_786) == "2026-11-29")
        #expect(Timestamp.daysSinceEpoch(of: "1970-01-01") == 0)
        #expect(Timestamp.daysSinceEpoch(of: "2026-13-01") == nil)
        #expect(Timestamp.daysSinceEpoch(of: "26-11-29") == nil)
    }

    @Test func closeWritesEveryAcceptedHitNumberedWithoutGaps() throws {
        let directory = TemporaryDirectory()
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path))
        for index in 1...500 { log.record(sampleHit(index)) }
        log.close()
        let lines = try hitLines(in: directory.path)
        #expect(lines.count == 500)
        #expect(lines.map { $0["seq"] as? Int } == Array(1...500))
        #expect(lines.map { $0["request_id"] as? String } == (1...500).map { "req-\($0)" })
        let statistics = log.statistics
        #expect(statistics.written == 500 && statistics.dropped == 0 && statistics.queued == 0)
    }

    @Test func hitsReachTheFileWithinTheFlushIntervalWithoutClosing() throws {
        let directory = TemporaryDirectory()
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path))
        defer { log.close() }
        log.record(sampleHit(1))
        var lines: [[String: Any]] = []
        for _ in 0..<30 where lines.isEmpty {
            Thread.sleep(forTimeInterval: 0.1)
            lines = try hitLines(in: directory.path)
        }
        #expect(lines.count == 1)
    }

    @Test func aFullFileContinuesInTheNextPartAndAllLinesSurvive() throws {
        let directory = TemporaryDirectory()
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path, maxFileBytes: 4096))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for index in 1...100 { log.record(sampleHit(index, at: now)) }
        log.close()
        let names = HitFileName.list(in: directory.path)
        #expect(names.count > 5)
        #expect(names.first == HitFileName(day: Timestamp.day(milliseconds: now), part: 0))
        for name in names {
            let size = try FileManager.default.attributesOfItem(atPath: directory.child(name.fileName))[.size] as? Int ?? 0
            #expect(size <= 4096)
        }
        #expect(try hitLines(in: directory.path).map { $0["seq"] as? Int } == Array(1...100))
    }

    @Test func aNewDayStartsANewFileAndOldDaysBeyondRetentionAreDeleted() throws {
        let directory = TemporaryDirectory()
        for old in ["hits-2026-10-01.jsonl", "hits-2026-10-01.1.jsonl", "hits-2026-11-27.jsonl", "notes.txt"] {
            try Data("{}\n".utf8).write(to: URL(fileURLWithPath: directory.child(old)))
        }
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path, retentionDays: 30))
        let day = Int64(86_400_000)
        let today = Int64(Timestamp.daysSinceEpoch(of: Timestamp.day(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))!) * day
        log.record(sampleHit(1, at: today + 1000))
        log.record(sampleHit(2, at: today + day + 1000))
        log.close()
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        let todayName = "hits-\(Timestamp.day(milliseconds: today)).jsonl"
        let tomorrowName = "hits-\(Timestamp.day(milliseconds: today + day)).jsonl"
        #expect(files.contains(todayName))
        #expect(files.contains(tomorrowName))
        #expect(files.contains("notes.txt"))
        #expect(!files.contains("hits-2026-10-01.jsonl"))
        #expect(!files.contains("hits-2026-10-01.1.jsonl"))
    }

    @Test func reopenAfterTheFileWasMovedAwayWritesANewFile() throws {
        let directory = TemporaryDirectory()
        let log = try HitLog(configuration: HitLogConfiguration(directory: directory.path))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        log.record(sampleHit(1, at: now))
        let name = "hits-\(Timestamp.day(milliseconds: now)).jsonl"
        var written = false
        for _ in 0..<30 where !written {
            Thread.sleep(forTimeInterval: 0.1)
            written = (try? String(contentsOfFile: directory.child(name), encoding: .utf8))?.isEmpty == false
        }
        try FileManager.default.moveItem(atPath: directory.child(name), toPath: directory.child("rotated.jsonl"))
        log.reopen()
        log.record(sampleHit(2, at: now))
        log.close()
        let moved = try String(contentsOfFile: directory.child("rotated.jsonl"), encoding: .utf8)
        let fresh = try String(contentsOfFile: directory.child(name), encoding: .utf8)
        #expect(moved.contains("\"req-1\"") && !moved.contains("\"req-2\""))
        #expect(fresh.contains("\"req-2\""))
    }

    @Test func aFullQueueDropsAndCountsInsteadOfWaiting() throws {
        let directory = TemporaryDirectory()
        let dropped = DropCount()
        let log = try HitLog(
            configuration: HitLogConfiguration(directory: directory.path, queueCapacity: 1),
            onDrop: { dropped.add($0) })
        for index in 1...10_000 { log.record(sampleHit(index)) }
        log.close()
        let statistics = log.statistics
        #expect(statistics.dropped > 0)
        #expect(statistics.written + statistics.dropped == 10_000)
        #expect(dropped.value == Int(statistics.dropped))
        let lines = try hitLines(in: directory.path)
        #expect(lines.count == Int(statistics.written))
        #expect(lines.map { $0["seq"] as? Int } == Array(1...lines.count))
    }

    @Test func aHitDirectoryThatCannotBeMadeSaysWhich() throws {
        let directory = TemporaryDirectory()
        try Data("file".utf8).write(to: URL(fileURLWithPath: directory.child("taken")))
        #expect {
            _ = try HitLog(configuration: HitLogConfiguration(directory: directory.child("taken/hits")))
        } throws: { error in
            "\(error)".hasPrefix("hit log \(directory.child("taken/hits")): cannot create the directory")
        }
    }
}

final class DropCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ value: Int) { lock.withLock { count += value } }
    var value: Int { lock.withLock { count } }
}
