import Foundation

/// Writes diagnostics for people (compiler style), for programs (JSON) or for
/// GitHub Actions (workflow annotations).
public struct DiagnosticFormatter: Sendable {
    /// An output format.
    public enum Format: String, Sendable, CaseIterable {
        case text, json, github
    }

    /// The format to write.
    public var format: Format

    /// Creates a formatter.
    public init(format: Format) {
        self.format = format
    }

    /// The whole report: every diagnostic, then a summary line (text), or one JSON
    /// document (json), or one annotation per line (github).
    public func render(_ report: ValidationReport, revision: String? = nil) -> String {
        switch format {
        case .text: return text(report, revision: revision)
        case .json: return json(report, revision: revision)
        case .github: return github(report, revision: revision)
        }
    }

    /// `file:line:col: error[rule]: /pointer message`.
    public static func headline(_ diagnostic: Diagnostic) -> String {
        "\(diagnostic.file):\(diagnostic.location.line):\(diagnostic.location.column): "
            + "\(diagnostic.severity.rawValue)[\(diagnostic.rule)]: \(sentence(diagnostic))"
    }

    /// The message with its subject: the JSON pointer, or "the document" at the root.
    public static func sentence(_ diagnostic: Diagnostic) -> String {
        guard let pointer = diagnostic.pointer else { return diagnostic.message }
        return (pointer.tokens.isEmpty ? "the document" : pointer.description) + " " + diagnostic.message
    }

    private func text(_ report: ValidationReport, revision: String?) -> String {
        var out = ""
        for diagnostic in report.diagnostics {
            out += Self.headline(diagnostic) + "\n"
            if let bytes = report.sources[diagnostic.file], let line = Self.line(diagnostic.location.line, of: bytes) {
                let (shown, caret) = Self.window(line, column: diagnostic.location.column)
                let number = String(diagnostic.location.line)
                let gutter = String(repeating: " ", count: number.count)
                let caretIndent = String(shown.unicodeScalars.prefix(caret).map { $0 == "\t" ? "\t" : " " }.joined())
                out += " \(number) | \(shown)\n"
                out += " \(gutter) | \(caretIndent)^\n"
            }
            if let fix = diagnostic.fix {
                out += "  fix: \(fix)\n"
            }
        }
        out += summary(report, revision: revision) + "\n"
        return out
    }

    /// One line: what was checked and how it went.
    public func summary(_ report: ValidationReport, revision: String?) -> String {
        let at = revision.map { " at \($0)" } ?? ""
        let checked =
            "\(report.manifestCount) \(report.manifestCount == 1 ? "manifest" : "manifests") in \(report.fileCount) \(report.fileCount == 1 ? "file" : "files")\(at)"
        if report.diagnostics.isEmpty { return "ok: \(checked) valid" }
        let files = Set(report.diagnostics.map(\.file)).count
        let errors = report.errorCount, warnings = report.warningCount
        var parts: [String] = []
        if errors > 0 { parts.append("\(errors) \(errors == 1 ? "error" : "errors")") }
        if warnings > 0 { parts.append("\(warnings) \(warnings == 1 ? "warning" : "warnings")") }
        let verdict = errors > 0 ? "invalid" : "ok"
        return "\(verdict): \(parts.joined(separator: ", ")) in \(files) \(files == 1 ? "file" : "files"); checked \(checked)"
    }

    private struct JSONReport: Encodable {
        struct Item: Encodable {
            var file: String
            var line: Int
            var column: Int
            var severity: String
            var rule: String
            var pointer: String?
            var message: String
            var fix: String?
        }
        var valid: Bool
        var revision: String?
        var files: Int
        var manifests: Int
        var errors: Int
        var warnings: Int
        var diagnostics: [Item]
    }

    private func json(_ report: ValidationReport, revision: String?) -> String {
        let items = report.diagnostics.map {
            JSONReport.Item(
                file: $0.file, line: $0.location.line, column: $0.location.column, severity: $0.severity.rawValue,
                rule: $0.rule.rawValue, pointer: $0.pointer?.description, message: Self.sentence($0), fix: $0.fix)
        }
        let document = JSONReport(
            valid: report.isValid, revision: revision, files: report.fileCount, manifests: report.manifestCount,
            errors: report.errorCount, warnings: report.warningCount, diagnostics: items)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private func github(_ report: ValidationReport, revision: String?) -> String {
        var out = ""
        for diagnostic in report.diagnostics {
            let level = diagnostic.severity == .error ? "error" : "warning"
            var message = Self.sentence(diagnostic)
            if let fix = diagnostic.fix { message += "\nfix: " + fix }
            out +=
                "::\(level) file=\(Self.escapeProperty(diagnostic.file)),line=\(diagnostic.location.line),col=\(diagnostic.location.column),"
                + "title=\(Self.escapeProperty(diagnostic.rule.rawValue))::\(Self.escapeData(message))\n"
        }
        out += summary(report, revision: revision) + "\n"
        return out
    }

    /// Workflow commands escape `%`, CR and LF in data, and also `:` and `,` in properties.
    private static func escapeData(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }

    private static func escapeProperty(_ text: String) -> String {
        escapeData(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }

    /// At most 120 characters of a long line, around the column, and the
    /// caret's offset in what is shown.
    static func window(_ line: String, column: Int, width: Int = 120) -> (String, Int) {
        let scalars = Array(line.unicodeScalars)
        let caret = max(0, min(column - 1, scalars.count))
        guard scalars.count > width else { return (line, caret) }
        let start = max(0, min(caret - width / 2, scalars.count - width))
        let end = min(scalars.count, start + width)
        var shown = String(String.UnicodeScalarView(scalars[start..<end]))
        var offset = caret - start
        if start > 0 {
            shown = "..." + shown
            offset += 3
        }
        if end < scalars.count { shown += "..." }
        return (shown, offset)
    }

    /// Line `number` (from 1) of a file, without its line break.
    static func line(_ number: Int, of bytes: [UInt8]) -> String? {
        var current = 1
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            if current == number { return String(decoding: bytes[start..<index], as: UTF8.self).trimmingCharacters(in: ["\r"]) }
            current += 1
            start = index + 1
        }
        if current == number, start <= bytes.count { return String(decoding: bytes[start...], as: UTF8.self) }
        return nil
    }
}
