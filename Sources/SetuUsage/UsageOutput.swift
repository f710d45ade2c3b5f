import Foundation
import Histogram

extension UsageReport {
    /// The columns of every row after the grouping columns.
    static let counts = [
        "requests", "allowed", "denied", "errors", "upstream_errors", "p50_ms", "p95_ms", "p99_ms",
        "upstream_p50_ms", "upstream_p95_ms", "upstream_p99_ms", "bytes_in", "bytes_out", "denied_by_reason",
    ]

    /// The header and each row's cells, as the table and CSV show them.
    private var cells: (header: [String], rows: [[String]]) {
        func ms(_ value: Double?) -> String { value.map(Self.milliseconds) ?? "-" }
        let header = (groupBy.isEmpty ? ["all"] : groupBy.map(\.rawValue)) + Self.counts
        let rows = rows.map { row -> [String] in
            let key = groupBy.isEmpty ? ["all"] : row.key
            let reasons = row.denied.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return key + [
                String(row.requests), String(row.allowed), String(row.deniedTotal), String(row.errorsTotal), String(row.upstreamErrors),
                ms(Row.milliseconds(row.latency, percentile: 50)), ms(Row.milliseconds(row.latency, percentile: 95)),
                ms(Row.milliseconds(row.latency, percentile: 99)), ms(Row.milliseconds(row.upstream, percentile: 50)),
                ms(Row.milliseconds(row.upstream, percentile: 95)), ms(Row.milliseconds(row.upstream, percentile: 99)),
                String(row.bytesIn), String(row.bytesOut), reasons.isEmpty ? "-" : reasons,
            ]
        }
        return (header, rows)
    }

    /// Aligned columns, counts right-aligned, with a line on what was read.
    public func table() -> String {
        let (header, rows) = cells
        let keyColumns = max(groupBy.count, 1)
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                // Counts are right-aligned; the grouping columns read from the left, and the
                // reasons, last, need no padding after them.
                guard index < cells.count - 1 else { return cell }
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                return index < keyColumns ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        var out = line(header) + "\n"
        for row in rows { out += line(row) + "\n" }
        out += summary() + "\n"
        return out
    }

    /// RFC 4180: a header line, then one line per row.
    public func csv() -> String {
        let (header, rows) = cells
        func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return ([header] + rows).map { $0.map(field).joined(separator: ",") + "\r\n" }.joined()
    }

    /// The report as JSON: rows with their counts, reasons and percentiles, and what was read.
    public func json() throws -> String {
        struct Percentiles: Encodable {
            var p50: Double?
            var p95: Double?
            var p99: Double?
        }
        struct JSONRow: Encodable {
            var group: [String: String]
            var requests: UInt64
            var allowed: UInt64
            var denied: [String: UInt64]
            var errors: [String: UInt64]
            var upstreamErrors: UInt64
            var latencyMs: Percentiles
            var upstreamMs: Percentiles?
            var bytesIn: UInt64
            var bytesOut: UInt64
        }
        struct JSONProblem: Encodable {
            var file: String
            var line: Int
            var reason: String
            var truncated: Bool
        }
        struct JSONReport: Encodable {
            var groupBy: [String]
            var rows: [JSONRow]
            var linesRead: UInt64
            var hitsCounted: UInt64
            var corruptLines: UInt64
            var truncatedLines: UInt64
            var problems: [JSONProblem]
            var files: [String]
            var rolledUpHits: UInt64
            var rollupRows: UInt64
            var readPastRollups: [JSONUnrolled]
        }
        struct JSONUnrolled: Encodable {
            var file: String
            var fromLine: Int
        }
        func percentiles(_ histogram: Histogram<UInt64>) -> Percentiles {
            Percentiles(
                p50: Row.milliseconds(histogram, percentile: 50), p95: Row.milliseconds(histogram, percentile: 95),
                p99: Row.milliseconds(histogram, percentile: 99))
        }
        let report = JSONReport(
            groupBy: groupBy.map(\.rawValue),
            rows: rows.map { row in
                JSONRow(
                    group: Dictionary(uniqueKeysWithValues: zip(groupBy.map(\.rawValue), row.key)), requests: row.requests,
                    allowed: row.allowed, denied: row.denied, errors: row.errors, upstreamErrors: row.upstreamErrors,
                    latencyMs: percentiles(row.latency), upstreamMs: row.upstream.totalCount == 0 ? nil : percentiles(row.upstream),
                    bytesIn: row.bytesIn, bytesOut: row.bytesOut)
            },
            linesRead: linesRead, hitsCounted: hitsCounted, corruptLines: corruptLines, truncatedLines: truncatedLines,
            problems: problems.map { JSONProblem(file: $0.file, line: $0.line, reason: $0.reason, truncated: $0.truncated) },
            files: files, rolledUpHits: rolledUpHits, rollupRows: rollupRows,
            readPastRollups: unrolled.map { JSONUnrolled(file: $0.file, fromLine: $0.fromLine) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }

    /// Milliseconds with three decimals, `12.345` (without `String(format:)`, slow on Linux).
    static func milliseconds(_ value: Double) -> String {
        let thousandths = Int((value * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// What was read, in one line: files, lines, hits counted, and lines that could not be read.
    public func summary() -> String {
        var text = "\(files.count) \(files.count == 1 ? "file" : "files"), \(linesRead) lines read, \(hitsCounted) hits counted"
        if rolledUpHits > 0 { text += " (\(rolledUpHits) from \(rollupRows) hourly rollup rows)" }
        if corruptLines > 0 { text += "; \(corruptLines) corrupt \(corruptLines == 1 ? "line" : "lines") skipped" }
        if truncatedLines > 0 { text += "; \(truncatedLines) truncated last \(truncatedLines == 1 ? "line" : "lines") skipped" }
        return text
    }

    /// Where hits were read from the hit files because hourly rollups do not hold them:
    /// none made yet for those files, or not up to their end.
    public func rollupNotes() -> [String] {
        guard !unrolled.isEmpty else { return [] }
        guard rollupsUsed else {
            return [
                "no hourly rollups for these hit files, so every hit was read: `setu serve` makes them each hour, `setu rollup DIR` makes them now"
            ]
        }
        let shown = unrolled.prefix(5).map { "\(($0.file as NSString).lastPathComponent) from line \($0.fromLine)" }
        let more = unrolled.count > 5 ? " and \(unrolled.count - 5) more" : ""
        return ["hourly rollups do not cover every hit yet, so these were read from the hit files: \(shown.joined(separator: ", "))\(more)"]
    }

    /// The lines that could not be read, one per line as `file:line: reason`, with how many more there are.
    public func problemLines() -> [String] {
        var lines = problems.map { "\($0.file):\($0.line): \($0.truncated ? "truncated last line" : "corrupt line"): \($0.reason)" }
        let more = corruptLines + truncatedLines - UInt64(problems.count)
        if more > 0 { lines.append("… and \(more) more") }
        return lines
    }
}
