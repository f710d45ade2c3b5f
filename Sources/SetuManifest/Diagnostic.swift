/// A place in a source file: line and column, both from 1, columns counted in
/// Unicode scalars as libyaml counts them.
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The line, from 1.
    public var line: Int
    /// The column, from 1.
    public var column: Int

    /// Creates a location.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// The start of a file.
    public static let start = SourceLocation(line: 1, column: 1)

    public var description: String { "\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}

/// One problem found in a marketplace: where it is, which rule it breaks, and
/// what to do about it.
public struct Diagnostic: Error, Sendable, Hashable, Comparable {
    /// How bad the problem is.
    public enum Severity: String, Sendable, Hashable, Codable {
        /// The marketplace is invalid; `setu validate` exits 1.
        case error
        /// Worth fixing, but the marketplace is still valid.
        case warning
    }

    /// How bad the problem is.
    public var severity: Severity
    /// The file, relative to the repository root.
    public var file: String
    /// Where in the file.
    public var location: SourceLocation
    /// Which value in the document, when the problem is in one.
    public var pointer: JSONPointer?
    /// The stable id of the rule broken, e.g. `schema.type` or `name.path`.
    public var rule: RuleID
    /// What is wrong.
    public var message: String
    /// What would fix it.
    public var fix: String?

    /// Creates a diagnostic.
    public init(
        _ severity: Severity = .error, file: String, location: SourceLocation = .start,
        pointer: JSONPointer? = nil, rule: RuleID, message: String, fix: String? = nil
    ) {
        self.severity = severity
        self.file = file
        self.location = location
        self.pointer = pointer
        self.rule = rule
        self.message = message
        self.fix = fix
    }

    /// Sorted by file, then line and column, then rule, so output is stable.
    public static func < (lhs: Diagnostic, rhs: Diagnostic) -> Bool {
        if lhs.file != rhs.file { return lhs.file < rhs.file }
        if lhs.location != rhs.location { return lhs.location < rhs.location }
        if lhs.rule != rhs.rule { return lhs.rule < rhs.rule }
        return lhs.message < rhs.message
    }
}
