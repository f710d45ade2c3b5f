import Foundation
import SetuConcurrency
import SetuFormats
import SetuHits

/// Why hit logs could not be read, said so that the user knows what to fix.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Reads hit logs and counts their hits: `setu usage`.
public enum HitLogReader {
    /// The hit files under `paths`: each directory's `hits-*.jsonl` parts (one directory per
    /// replica), oldest first, and files named on their own.
    /// - Parameter days: when given, only the directories' files of days that can hold hits
    ///   in the range (a day's file may end with a few hits just past midnight).
    public static func files(in paths: [String], days: ClosedRange<Int64>? = nil) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UsageError(message: "\(path) does not exist: name a hit directory (<state>/hits) or a hit file")
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let names = try FileManager.default.contentsOfDirectory(atPath: path).compactMap(HitFileName.init(fileName:)).sorted()
            for name in names {
                if let days, let day = Timestamp.daysSinceEpoch(of: name.day), day < days.lowerBound - 1 || day > days.upperBound {
                    continue
                }
                files.append((path as NSString).appendingPathComponent(name.fileName))
            }
        }
        return files
    }

    /// Counts the hits of `files` that `query` admits, reading the files in parallel.
    /// Lines that are not hits are counted and the first ones kept with file and line; a
    /// file with no hit among lines that are not hits is refused, as it is not a hit log.
    public static func report(_ query: UsageQuery, files: [String]) throws -> UsageReport {
        try report(query, scans: files.map { Scan(path: $0) }, rollups: [])
    }

    /// Counts the hits under `paths` that `query` admits, as `report(_:files:)` does, taking
    /// each directory's hourly rollups where they cover its hits and whole hours of the
    /// range, and reading the rest from the hit files.
    /// - Parameter days: as for `files(in:days:)`.
    /// - Parameter rollups: false to read every hit from the hit files.
    public static func report(
        _ query: UsageQuery, paths: [String], days: ClosedRange<Int64>? = nil, rollups useRollups: Bool = true
    ) throws -> UsageReport {
        var scans: [Scan] = []
        var rollups: [(directory: String, names: [HitFileName])] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                let names = try files(in: [path], days: days).compactMap { HitFileName(fileName: ($0 as NSString).lastPathComponent) }
                // One work item per day, so a month's rollups are read on every core.
                for (_, ofDay) in Dictionary(grouping: names, by: \.day).sorted(by: { $0.key < $1.key }) where useRollups {
                    rollups.append((path, ofDay.sorted()))
                }
                scans += names.map { Scan(path: (path as NSString).appendingPathComponent($0.fileName), directory: path, name: $0) }
            } else {
                scans += try files(in: [path]).map { Scan(path: $0) }
            }
        }
        var report = try report(query, scans: scans, rollups: rollups)
        // Asked to read every hit: there is nothing to say about rollups.
        if !useRollups { report.unrolled = [] }
        return report
    }

    /// A hit file to read: from where, and up to where its rollups already counted it.
    struct Scan: Sendable {
        var path: String
        var directory: String?
        var name: HitFileName?
        var start = HitRollups.Position.start
        /// Hits before this byte are in rollups: they are counted from the file only in hours
        /// the range covers in part, and their problems were taken from the rollups.
        var rolledUpTo = 0
    }

    private static func report(
        _ query: UsageQuery, scans plannedScans: [Scan], rollups: [(directory: String, names: [HitFileName])]
    ) throws -> UsageReport {
        let threads = max(1, min(Parallel.cores, plannedScans.count + rollups.count))
        var total = UsageTally(query: query)
        // The rollups first: where they end is where each hit file is read from.
        let rolledUp = try tally(rollups.count, threads: threads, into: &total) { index, tally in
            let directory = rollups[index].directory
            return try HitRollups.read(hitDirectory: directory, fileNames: rollups[index].names, into: &tally).map {
                ((directory as NSString).appendingPathComponent($0.key), $0.value)
            }
        }
        let consumed = Dictionary(rolledUp.joined(), uniquingKeysWith: { _, last in last })
        let partialDays = Set(query.partialHours.flatMap { hour in [hour / 24, hour / 24 + 1] })
        var toRead: [Scan] = []
        var unrolled: [UsageReport.Unrolled] = []
        for var scan in plannedScans {
            if let position = consumed[scan.path] {
                scan.rolledUpTo = position.offset
                // A file holding hits of an hour the range covers in part is read whole.
                let day = scan.name.flatMap { Timestamp.daysSinceEpoch(of: $0.day) } ?? -1
                if !partialDays.contains(day) { scan.start = position }
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: scan.path)[.size] as? Int) ?? 0
            if scan.directory != nil, size > scan.rolledUpTo {
                unrolled.append(UsageReport.Unrolled(file: scan.path, fromLine: (consumed[scan.path]?.line ?? 0) + 1))
            }
            if size > scan.start.offset { toRead.append(scan) }
        }
        let scans = toRead
        _ = try tally(scans.count, threads: threads, into: &total) { index, tally in try read(scans[index], into: &tally) }
        // The first problems in file order: each thread kept the first of its own files.
        let files = plannedScans.map(\.path)
        let order = Dictionary(files.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
        total.problems = Array(
            total.problems.sorted { (order[$0.file] ?? 0, $0.line) < (order[$1.file] ?? 0, $1.line) }.prefix(UsageReport.problemsKept))
        var report = total.report(files: files)
        report.rollupsUsed = !rollups.isEmpty && !consumed.isEmpty
        report.unrolled = unrolled
        return report
    }

    /// Counts `items` on up to `threads` cores into `total`, with what `body` says of each.
    /// Each thread counts into one tally of its own rather than one per item: a row's
    /// histograms are tens of kilobytes, and a month of days each with its own rows spent
    /// more time making and merging them than reading.
    private static func tally<Value>(
        _ items: Int, threads: Int, into total: inout UsageTally, _ body: @Sendable (Int, inout UsageTally) throws -> Value
    ) throws -> [Value] {
        let threads = min(threads, items)
        let query = total.query
        let results = Parallel.map(threads, minimum: 2) { thread in
            Result {
                var tally = UsageTally(query: query)
                var values: [Value] = []
                for index in stride(from: thread, to: items, by: threads) { values.append(try body(index, &tally)) }
                return (tally, values)
            }
        }
        var values: [Value] = []
        for result in results {
            let (tally, more) = try result.get()
            total.add(tally)
            values += more
        }
        return values
    }

    /// Counts one file's hits into `tally`.
    static func read(_ scan: Scan, into tally: inout UsageTally) throws {
        let file = scan.path
        // Mapped rather than copied in: the lines are read once, in place.
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) else {
            throw UsageError(message: "cannot read \(file): check that it is a file you may read")
        }
        var hits: UInt64 = 0
        var firstProblem: UsageReport.Problem?
        data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = scan.start.offset
            var line = scan.start.line
            while start < bytes.count {
                line += 1
                let base = UnsafeRawPointer(bytes.baseAddress!)
                let newline = memchr(base + start, 0x0A, bytes.count - start)
                let end = newline.map { UnsafeRawPointer($0) - base } ?? bytes.count
                let complete = end < bytes.count
                defer { start = end + 1 }
                let text = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if text.first != UInt8(ascii: "{"), text.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                tally.linesRead += 1
                let rolledUp = start < scan.rolledUpTo
                let counted = HitLine.scan(text).flatMap { hit in
                    Result { () throws(HitLine.Failure) in
                        guard !rolledUp || !tally.query.coversWholeHour(hit.milliseconds.quotientAndRemainderFloored(dividingBy: 3_600_000).0)
                        else { return }
                        try tally.count(hit, in: text)
                    }
                }
                switch counted {
                case .success:
                    hits += 1
                case .failure where rolledUp:
                    // Its rollup segment told of it already.
                    break
                case .failure(let failure):
                    let problem = UsageReport.Problem(file: file, line: line, reason: failure.reason, truncated: !complete)
                    if firstProblem == nil { firstProblem = problem }
                    tally.problem(problem)
                }
            }
        }
        if hits == 0, scan.rolledUpTo == 0, let firstProblem, !firstProblem.truncated {
            throw UsageError(
                message: "\(file) is not a Setu hit log: line \(firstProblem.line): \(firstProblem.reason). "
                    + "Name the hit directory (<state>/hits) or its hits-YYYY-MM-DD.jsonl files")
        }
    }
}
