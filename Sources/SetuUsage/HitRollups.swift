import Foundation
import Histogram
import SetuFormats
import SetuHits
import SetuStorage

/// Hourly rollups of a hit directory, kept beside it in `<hits>/rollups/`, so that usage
/// over weeks or months is counted from a few rows per hour instead of every hit.
///
/// A rollup file, `rollup-YYYY-MM-DD.bin`, belongs to the hit files of that day. It is a
/// header followed by segments, each appended whole and synced: the hits of one hit file
/// from one byte offset to another, grouped by hour, consumer, API, publisher, operation,
/// status and decision, with their counts, bytes, and latency and upstream histograms.
/// Segments only add, so a hit written late for an hour already rolled up lands in the
/// next segment and is still counted once. A reader takes, for each hit file, the segments
/// that follow one another from byte 0, and reads the hits after the last one from the
/// hit file itself; a segment cut short by a crash is ignored, then replaced.
///
/// The format is our own compact binary one (`SetuStorage`): a month is hundreds of
/// thousands of rows with histograms, which must read in well under a second.
public enum HitRollups {
    /// The folder the rollups of a hit directory are kept in.
    public static func folder(of hitDirectory: String) -> String {
        (hitDirectory as NSString).appendingPathComponent("rollups")
    }

    /// The rollup file for the hit files of `day` (`2026-11-29`).
    static func file(in hitDirectory: String, day: String) -> String {
        (folder(of: hitDirectory) as NSString).appendingPathComponent("rollup-\(day).bin")
    }

    /// The first bytes of every rollup file: the format and its version.
    static let header = Array("SETU-ROLLUP 1\n".utf8)

    /// What one `update` rolled up.
    public struct UpdateSummary: Sendable, Equatable {
        /// Segments appended: one per hit file with new hits.
        public var segments = 0
        /// Lines rolled up, hits among them, and rows written.
        public var lines = 0
        public var hits = 0
        public var rows = 0
    }

    /// Rolls up the hits of `hitDirectory` that no rollup holds yet, up to the first line
    /// of an hour not yet over: a hit at or after `before` (milliseconds) and what follows
    /// it wait for the next update. Only complete lines are rolled up.
    ///
    /// Updates of one directory run one at a time (the daemon's and `setu rollup`'s), held
    /// apart by a lock on `<hits>/rollups/.lock`.
    /// - Throws: `UsageError` when the rollup folder cannot be made or a file written.
    @discardableResult
    public static func update(hitDirectory: String, before: Int64) throws -> UpdateSummary {
        let folder = folder(of: hitDirectory)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw UsageError(message: "cannot make the rollup folder \(folder): \(error.localizedDescription)")
        }
        let lock = open(folder + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw UsageError(message: "cannot open \(folder)/.lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}

        var summary = UpdateSummary()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: hitDirectory))?.compactMap(HitFileName.init(fileName:)).sorted() ?? []
        var indexes: [String: RollupFile] = [:]
        for name in names {
            let rollupPath = file(in: hitDirectory, day: name.day)
            if indexes[rollupPath] == nil { indexes[rollupPath] = try RollupFile(path: rollupPath, repairing: true) }
            let done = indexes[rollupPath]!.consumed[name.fileName] ?? .start
            let hitPath = (hitDirectory as NSString).appendingPathComponent(name.fileName)
            guard let segment = try rollUp(hitPath, fileName: name.fileName, from: done, before: before) else { continue }
            try indexes[rollupPath]!.append(segment)
            summary.segments += 1
            summary.lines += segment.lines
            summary.hits += segment.hits
            summary.rows += segment.rowCount
        }
        return summary
    }

    /// A segment of the complete lines of `path` from `done` until a hit at or after `before`;
    /// nil when there are none.
    private static func rollUp(_ path: String, fileName: String, from done: Position, before: Int64) throws -> Segment? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), data.count > done.offset else {
            return nil
        }
        var tally = RollupTally()
        var position = done
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Void in
            let bytes = raw.bindMemory(to: UInt8.self)
            let base = UnsafeRawPointer(bytes.baseAddress!)
            while position.offset < bytes.count {
                // Only complete lines: the last may still be being written.
                guard let newline = memchr(base + position.offset, 0x0A, bytes.count - position.offset) else { break }
                let end = UnsafeRawPointer(newline) - base
                let text = UnsafeBufferPointer(rebasing: bytes[position.offset..<end])
                let line = position.line + 1
                if text.first != UInt8(ascii: "{"), text.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                    position = Position(offset: end + 1, line: line)
                    continue
                }
                switch HitLine.scan(text) {
                case .success(let hit):
                    if hit.milliseconds >= before { return }
                    do throws(HitLine.Failure) {
                        try tally.count(hit, in: text)
                    } catch {
                        tally.problem(line: line, reason: error.reason)
                    }
                case .failure(let failure):
                    tally.problem(line: line, reason: failure.reason)
                }
                tally.lines += 1
                position = Position(offset: end + 1, line: line)
            }
        }
        guard position.offset > done.offset else { return nil }
        return tally.segment(fileName: fileName, from: done, to: position)
    }

    /// A place in a hit file: the byte after a line, and that line's number (0 at the start).
    struct Position: Equatable {
        var offset: Int
        var line: Int
        static let start = Position(offset: 0, line: 0)
    }

    /// What is rolled up of one hit file between two positions.
    struct Segment {
        var fileName: String
        var from: Position
        var to: Position
        var lines: Int
        var hits: Int
        var corrupt: Int
        /// The first problems, by line.
        var problems: [(line: Int, reason: String)]
        var rowCount: Int
        /// The strings the rows refer to, then the rows (`RollupTally.segment`).
        var body: [UInt8]
    }

    /// Reads the rollups of the hit files named (`fileNames`, in one directory) into
    /// `tally`: the rows of whole hours in the query's range, and the problems. Returns
    /// how far each of those files is rolled up.
    static func read(
        hitDirectory: String, fileNames: [HitFileName], into tally: inout UsageTally
    ) throws -> [String: Position] {
        var consumed: [String: Position] = [:]
        let wanted = Set(fileNames.map(\.fileName))
        for day in Set(fileNames.map(\.day)).sorted() {
            let rollup = try RollupFile(path: file(in: hitDirectory, day: day), repairing: false)
            for segment in rollup.segments where wanted.contains(segment.fileName) {
                try tally.countRolledUp(segment, file: (hitDirectory as NSString).appendingPathComponent(segment.fileName))
            }
            for (name, position) in rollup.consumed where wanted.contains(name) { consumed[name] = position }
        }
        return consumed
    }
}

/// One rollup file: the segments that follow one another for each hit file, read from disk.
struct RollupFile {
    let path: String
    /// For each hit file, how far its segments reach.
    private(set) var consumed: [String: HitRollups.Position] = [:]
    /// The segments in order, those that continue where their file's last one ended.
    private(set) var segments: [HitRollups.Segment] = []
    /// Where the last complete segment ends.
    private var end = 0

    /// Reads the file; a missing one holds nothing. With `repairing`, a last segment cut
    /// short is cut off, so the next append follows a whole one.
    init(path: String, repairing: Bool) throws {
        self.path = path
        guard let bytes = AtomicFile.read(path) else { return }
        // A header cut short by a crash: the file holds nothing yet.
        if bytes.count < HitRollups.header.count, HitRollups.header.starts(with: bytes) {
            if repairing { truncate(path, 0) }
            return
        }
        guard bytes.starts(with: HitRollups.header) else {
            throw UsageError(message: "\(path) is not a Setu rollup file: remove it and run `setu rollup` to make it again")
        }
        var reader = ByteReader(bytes[HitRollups.header.count...])
        end = HitRollups.header.count
        while !reader.isAtEnd {
            guard let payload = try? reader.readSection(), let segment = try? Self.decode(payload) else { break }
            end = payload.endIndex
            let reached = consumed[segment.fileName] ?? .start
            guard segment.from == reached else { continue }
            consumed[segment.fileName] = segment.to
            segments.append(segment)
        }
        if repairing, end < bytes.count { truncate(path, off_t(end)) }
    }

    /// Appends a segment and syncs it.
    mutating func append(_ segment: HitRollups.Segment) throws {
        var writer = ByteWriter()
        if end == 0 { writer.write(raw: HitRollups.header) }
        writer.write(Self.encode(segment))
        let bytes = writer.bytes
        do {
            try AtomicFile.append(bytes, to: path)
        } catch {
            throw UsageError(message: "\(error)")
        }
        end += bytes.count
        consumed[segment.fileName] = segment.to
        segments.append(segment)
    }

    static func encode(_ segment: HitRollups.Segment) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(segment.fileName)
        writer.write(segment.from.offset)
        writer.write(segment.from.line)
        writer.write(segment.to.offset)
        writer.write(segment.to.line)
        writer.write(segment.lines)
        writer.write(segment.hits)
        writer.write(segment.corrupt)
        writer.write(segment.problems.count)
        for problem in segment.problems {
            writer.write(problem.line)
            writer.write(problem.reason)
        }
        writer.write(segment.rowCount)
        writer.write(section: segment.body[...])
        return writer.bytes
    }

    static func decode(_ payload: ArraySlice<UInt8>) throws -> HitRollups.Segment {
        var reader = ByteReader(payload)
        let fileName = try reader.readString()
        let from = HitRollups.Position(offset: try reader.readInt(), line: try reader.readInt())
        let to = HitRollups.Position(offset: try reader.readInt(), line: try reader.readInt())
        let lines = try reader.readInt()
        let hits = try reader.readInt()
        let corrupt = try reader.readInt()
        var problems: [(line: Int, reason: String)] = []
        for _ in 0..<(try reader.readCount()) { problems.append((try reader.readInt(), try reader.readString())) }
        let rowCount = try reader.readInt()
        let body = Array(try reader.readSection())
        guard reader.isAtEnd, from.offset < to.offset else { throw ByteReader.Truncated() }
        return HitRollups.Segment(
            fileName: fileName, from: from, to: to, lines: lines, hits: hits, corrupt: corrupt, problems: problems, rowCount: rowCount,
            body: body)
    }
}

/// The hits of one segment being rolled up, grouped by every column a query can ask about.
struct RollupTally {
    struct Key: Hashable {
        var hour: Int64
        var consumer: String?
        var api: String?
        var publisher: String?
        var operation: String?
        var status: Int
        var decision: String
    }

    /// A row's counts. Times are kept as a histogram's buckets would hold them, but in a
    /// dictionary: a rollup row mostly holds a few hits, and a histogram's counts are
    /// kilobytes. Each bucket keeps the greatest time it saw, as the report's histogram
    /// keeps the exact greatest, which its highest percentiles are capped at.
    struct Counts {
        var requests: UInt64 = 0
        var bytesIn: UInt64 = 0
        var bytesOut: UInt64 = 0
        var latency: [UInt64: Bucket] = [:]
        var upstream: [UInt64: Bucket] = [:]
    }

    struct Bucket {
        var greatest: UInt64 = 0
        var count: UInt64 = 0

        static func record(_ time: UInt64, in buckets: inout [UInt64: Bucket]) {
            let value = max(time, 1)
            buckets[RollupTally.buckets.lowestEquivalentForValue(value), default: Bucket()].add(value)
        }

        mutating func add(_ value: UInt64) {
            greatest = max(greatest, value)
            count += 1
        }
    }

    /// Where the report's histograms put a time: its buckets depend only on the precision.
    static let buckets = UsageReport.Row.histogram()

    var rows: [Key: Counts] = [:]
    var lines = 0
    var hits = 0
    var corrupt = 0
    var problems: [(line: Int, reason: String)] = []

    mutating func count(_ hit: RawHit, in line: UnsafeBufferPointer<UInt8>) throws(HitLine.Failure) {
        let key = Key(
            hour: hit.milliseconds.quotientAndRemainderFloored(dividingBy: 3_600_000).0, consumer: try hit.consumer.text(in: line),
            api: try hit.api.text(in: line), publisher: try hit.publisher.text(in: line), operation: try hit.operation.text(in: line),
            status: hit.status, decision: try hit.decision.text(in: line) ?? "")
        hits += 1
        rows[key, default: Counts()].add(hit)
    }

    mutating func problem(line: Int, reason: String) {
        corrupt += 1
        if problems.count < UsageReport.problemsKept { problems.append((line, reason)) }
    }

    /// The rows in the segment's form: a table of strings, then for each row its hour, the
    /// strings' indexes (0 for none), status, requests, bytes, and each histogram as pairs
    /// of a value and its count.
    func segment(fileName: String, from: HitRollups.Position, to: HitRollups.Position) -> HitRollups.Segment {
        var strings: [String: Int] = [:]
        var table: [String] = []
        func index(_ text: String?) -> Int {
            guard let text else { return 0 }
            if let known = strings[text] { return known }
            table.append(text)
            strings[text] = table.count
            return table.count
        }
        var rowsWriter = ByteWriter()
        for (key, counts) in rows.sorted(by: { $0.key.hour < $1.key.hour }) {
            rowsWriter.write(Int(key.hour))
            for text in [key.consumer, key.api, key.publisher, key.operation, key.decision] { rowsWriter.write(index(text)) }
            rowsWriter.write(key.status)
            rowsWriter.write(Int(counts.requests))
            rowsWriter.write(Int(counts.bytesIn))
            rowsWriter.write(Int(counts.bytesOut))
            for times in [counts.latency, counts.upstream] {
                rowsWriter.write(times.count)
                for (_, bucket) in times.sorted(by: { $0.key < $1.key }) {
                    rowsWriter.write(Int(bucket.greatest))
                    rowsWriter.write(Int(bucket.count))
                }
            }
        }
        var body = ByteWriter()
        body.write(table)
        body.write(section: rowsWriter.bytes[...])
        return HitRollups.Segment(
            fileName: fileName, from: from, to: to, lines: lines, hits: hits, corrupt: corrupt, problems: problems, rowCount: rows.count,
            body: body.bytes)
    }
}

extension RollupTally.Counts {
    mutating func add(_ hit: RawHit) {
        requests += 1
        bytesIn += hit.bytesIn
        bytesOut += hit.bytesOut
        RollupTally.Bucket.record(hit.latencyMicroseconds, in: &latency)
        if let upstreamMicroseconds = hit.upstreamMicroseconds { RollupTally.Bucket.record(upstreamMicroseconds, in: &upstream) }
    }
}

extension UsageTally {
    /// Counts the rows of a segment that fall in whole hours of the query's range and pass
    /// its filters, and takes the segment's problems as those of `file`.
    mutating func countRolledUp(_ segment: HitRollups.Segment, file: String) throws {
        corruptLines += UInt64(segment.corrupt)
        for problem in segment.problems where problems.count < UsageReport.problemsKept {
            problems.append(UsageReport.Problem(file: file, line: problem.line, reason: problem.reason, truncated: false))
        }
        var body = ByteReader(segment.body)
        // Index 0 is "none": a hit refused before it was routed has no API.
        let strings = [""] + (try body.readStrings())
        var rows = ByteReader(try body.readSection())
        var outcomes = [UsageReport.Row.Outcome?](repeating: nil, count: strings.count)
        var rowNumbers: [GroupParts: Int] = [:]
        var indexes = [0, 0, 0, 0, 0]
        for _ in 0..<segment.rowCount {
            let hour = Int64(try rows.readInt())
            for slot in 0..<5 {
                indexes[slot] = try rows.readInt()
                guard indexes[slot] >= 0, indexes[slot] < strings.count else { throw ByteReader.Truncated() }
            }
            let status = try rows.readInt()
            let requests = UInt64(max(try rows.readInt(), 0))
            let bytesIn = UInt64(max(try rows.readInt(), 0))
            let bytesOut = UInt64(max(try rows.readInt(), 0))
            let (consumer, api, publisher, operation, decision) = (
                strings[indexes[0]], strings[indexes[1]], strings[indexes[2]], strings[indexes[3]], strings[indexes[4]]
            )
            guard
                query.admitsRolledUp(
                    hour: hour, consumer: consumer, api: api, publisher: publisher, status: status, decision: decision)
            else {
                for _ in 0..<2 { for _ in 0..<(try rows.readCount()) { _ = try rows.readInt(); _ = try rows.readInt() } }
                continue
            }
            if outcomes[indexes[4]] == nil { outcomes[indexes[4]] = UsageReport.Row.Outcome(decision: decision) }
            // Rows of a segment that share a group share its row: its key is made and looked
            // up once per segment.
            var parts = GroupParts()
            for dimension in query.groupBy {
                switch dimension {
                case .consumer: parts.consumer = indexes[0]
                case .api: parts.api = indexes[1]
                case .publisher: parts.publisher = indexes[2]
                case .operation: parts.operation = indexes[3]
                case .day: parts.time = hour / 24
                case .hour: parts.time = hour
                case .status: parts.status = status
                case .decision: parts.decision = indexes[4]
                }
            }
            if let number = rowNumbers[parts] {
                try countRolledUp(
                    &rows, into: number, outcome: outcomes[indexes[4]]!, status: status, requests: requests, bytesIn: bytesIn, bytesOut: bytesOut)
                continue
            }
            var key = ""
            for (position, dimension) in query.groupBy.enumerated() {
                if position > 0 { key.append("\u{1F}") }
                switch dimension {
                case .consumer: key.append(consumer.isEmpty ? "-" : consumer)
                case .api: key.append(api.isEmpty ? "-" : api)
                case .publisher: key.append(publisher.isEmpty ? "-" : publisher)
                case .operation: key.append(operation.isEmpty ? "-" : operation)
                case .day: key.append(hourNames.names(of: hour * 3_600_000).day)
                case .hour: key.append(hourNames.names(of: hour * 3_600_000).hour)
                case .status: key.append(String(status))
                case .decision: key.append(decision.isEmpty ? "-" : decision)
                }
            }
            let number = rowNumber(key)
            rowNumbers[parts] = number
            try countRolledUp(
                &rows, into: number, outcome: outcomes[indexes[4]]!, status: status, requests: requests, bytesIn: bytesIn, bytesOut: bytesOut)
        }
        rollupRows += UInt64(segment.rowCount)
    }

    /// What a rollup row's group is made of, as indexes into its segment's strings; the
    /// columns not grouped by stay 0.
    private struct GroupParts: Hashable {
        var consumer = 0
        var api = 0
        var publisher = 0
        var operation = 0
        var decision = 0
        var status = 0
        var time: Int64 = 0
    }

    /// Counts one rollup row, whose histograms `rows` reads next, into the row at `index`.
    private mutating func countRolledUp(
        _ rows: inout ByteReader, into number: Int, outcome: UsageReport.Row.Outcome, status: Int,
        requests: UInt64, bytesIn: UInt64, bytesOut: UInt64
    ) throws {
        self.rows[number].count(outcome, status: status, requests: requests, bytesIn: bytesIn, bytesOut: bytesOut)
        for histogram in 0..<2 {
            for _ in 0..<(try rows.readCount()) {
                let value = UInt64(max(try rows.readInt(), 1))
                let count = UInt64(max(try rows.readInt(), 0))
                if histogram == 0 {
                    self.rows[number].record(latency: value, count: count)
                } else {
                    self.rows[number].record(upstream: value, count: count)
                }
            }
        }
        hitsCounted += requests
        rolledUpHits += requests
    }
}
