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
        // One tally per thread rather than per file: a row's histograms are tens of kilobytes.
        let threads = min(Parallel.cores, files.count)
        let tallies = Parallel.map(threads, minimum: 2) { thread in
            Result {
                var tally = UsageTally(query: query)
                for index in stride(from: thread, to: files.count, by: threads) { try read(files[index], into: &tally) }
                return tally
            }
        }
        var total = UsageTally(query: query)
        for tally in tallies { total.add(try tally.get()) }
        // The first problems in file order: each thread kept the first of its own files.
        let order = Dictionary(files.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
        total.problems = Array(
            total.problems.sorted { (order[$0.file] ?? 0, $0.line) < (order[$1.file] ?? 0, $1.line) }.prefix(UsageReport.problemsKept))
        return total.report(files: files)
    }

    /// Counts one file's hits into `tally`.
    static func read(_ file: String, into tally: inout UsageTally) throws {
        // Mapped rather than copied in: the lines are read once, in place.
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) else {
            throw UsageError(message: "cannot read \(file): check that it is a file you may read")
        }
        var hits: UInt64 = 0
        var firstProblem: UsageReport.Problem?
        data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            var line = 0
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
                let counted = HitLine.scan(text).flatMap { hit in
                    Result { () throws(HitLine.Failure) in try tally.count(hit, in: text) }
                }
                switch counted {
                case .success:
                    hits += 1
                case .failure(let failure):
                    let problem = UsageReport.Problem(file: file, line: line, reason: failure.reason, truncated: !complete)
                    if firstProblem == nil { firstProblem = problem }
                    tally.problem(problem)
                }
            }
        }
        if hits == 0, let firstProblem, !firstProblem.truncated {
            throw UsageError(
                message: "\(file) is not a Setu hit log: line \(firstProblem.line): \(firstProblem.reason). "
                    + "Name the hit directory (<state>/hits) or its hits-YYYY-MM-DD.jsonl files")
        }
    }
}
