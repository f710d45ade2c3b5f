import ArgumentParser
import Foundation
import SetuUsage

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Count the gateway's hits: requests, denials, latency and bytes, grouped as you ask.",
        discussion: """
            Reads the hit logs of one or more `setu serve` replicas (each a <state>/hits directory,
            rotated parts included) or hit files named on their own. Lines that are not hits are
            counted and listed with file and line, and skipped.

            Examples:
              setu usage .setu/hits --since 24h --by api
              setu usage replica-a/hits replica-b/hits --since 2026-11-01 --until 2026-12-01 --by consumer,day --format csv
              setu usage .setu/hits --api cbse/class-xii-marksheet --status 4xx --by decision
            """)

    @Argument(help: ArgumentHelp("Hit directories (<state>/hits) or hit files.", valueName: "path"))
    var paths: [String] = [".setu/hits"]

    @Option(
        help: ArgumentHelp(
            "Count hits from this time: a day (2026-11-29), a time (2026-11-29T08:00:00Z) or a duration back from now (90m, 24h, 7d).", valueName: "when"))
    var since: String?

    @Option(help: ArgumentHelp("Count hits before this time, written as for --since.", valueName: "when"))
    var until: String?

    @Option(help: ArgumentHelp("Only this consumer (repeat for several).", valueName: "name"))
    var consumer: [String] = []

    @Option(help: ArgumentHelp("Only this API, <publisher>/<name> (repeat for several).", valueName: "id"))
    var api: [String] = []

    @Option(help: ArgumentHelp("Only this publisher's APIs (repeat for several).", valueName: "name"))
    var publisher: [String] = []

    @Option(help: ArgumentHelp("Only this status, or class of them: 429, 4xx (repeat for several).", valueName: "status"))
    var status: [String] = []

    @Option(help: ArgumentHelp("Only this decision: allow, deny, error, or one reason as deny:rate-limited (repeat for several).", valueName: "decision"))
    var decision: [String] = []

    @Option(
        help: ArgumentHelp(
            "Group rows by these, comma-separated: \(UsageQuery.Dimension.allCases.map(\.rawValue).joined(separator: ", ")).",
            valueName: "columns"))
    var by: [String] = []

    @Flag(help: "Read every hit from the hit files, also those hourly rollups hold.")
    var readHits = false

    @Option(help: ArgumentHelp("Output format: table, csv or json.", valueName: "format"))
    var format: UsageFormat = .table

    enum UsageFormat: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json
    }

    func validate() throws {
        _ = try query(now: 0)
    }

    /// The query the options ask for, times relative to `now`.
    func query(now: Int64) throws -> UsageQuery {
        var query = UsageQuery()
        func time(_ text: String?, _ option: String) throws -> Int64? {
            guard let text else { return nil }
            guard let milliseconds = UsageQuery.time(text, now: now) else {
                throw ValidationError("\(option) \(text) is not a time: write a day (2026-11-29), a time (2026-11-29T08:00:00Z) or a duration (90m, 24h, 7d)")
            }
            return milliseconds
        }
        query.since = try time(since, "--since")
        query.until = try time(until, "--until")
        if let since = query.since, let until = query.until, since >= until {
            throw ValidationError("--since \(since) is not before --until \(until): nothing would be counted")
        }
        query.consumers = Set(consumer)
        query.apis = Set(api)
        query.publishers = Set(publisher)
        query.statuses = try status.map { text in
            guard let filter = UsageQuery.StatusFilter(text) else {
                throw ValidationError("--status \(text) is not a status: write one as 429, or a class as 4xx")
            }
            return filter
        }
        query.decisions = try decision.map { text in
            let kinds = ["allow", "deny", "error"]
            guard kinds.contains(text) || kinds.contains(where: { text.hasPrefix($0 + ":") && text.count > $0.count + 1 }) else {
                throw ValidationError("--decision \(text) is not a decision: write allow, deny, error, or a reason as deny:rate-limited")
            }
            return text
        }
        query.groupBy = try by.flatMap { $0.split(separator: ",") }.map { name in
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let dimension = UsageQuery.Dimension(rawValue: trimmed) else {
                throw ValidationError(
                    "--by \(trimmed) is not a column: use \(UsageQuery.Dimension.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return dimension
        }
        return query
    }

    func run() throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        let query = try query(now: now)
        do {
            // A range wholly after tomorrow (`--since` in the future) reads no file.
            let first = (query.since ?? 0) / 86_400_000, last = (query.until ?? now + 86_400_000) / 86_400_000
            let report =
                first <= last ? try HitLogReader.report(query, paths: paths, days: first...last, rollups: !readHits) : try HitLogReader.report(query, files: [])
            if report.files.isEmpty {
                FileHandle.standardError.write(Data("note: no hit files in \(paths.joined(separator: ", ")) for that time\n".utf8))
            }
            switch format {
            case .table: write(report.table())
            case .csv: write(report.csv())
            case .json: write(try report.json())
            }
            if format != .json {
                if format == .csv { FileHandle.standardError.write(Data((report.summary() + "\n").utf8)) }
                for line in report.rollupNotes() { FileHandle.standardError.write(Data("note: \(line)\n".utf8)) }
                for line in report.problemLines() { FileHandle.standardError.write(Data("warning: \(line)\n".utf8)) }
            }
        } catch let error as UsageError {
            throw CLIFailure(error.message)
        }
    }
}
