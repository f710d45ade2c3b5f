import Foundation

/// The result of validating a marketplace.
public struct ValidationReport: Sendable {
    /// What the valid manifests declare (and, leniently, the invalid ones).
    public var marketplace: Marketplace
    /// Every problem found, sorted by file, line and column.
    public var diagnostics: [Diagnostic]
    /// How many YAML files were read.
    public var fileCount: Int
    /// How many manifests (YAML documents) were read.
    public var manifestCount: Int
    /// The bytes of each file that has a diagnostic, for showing the offending line.
    public var sources: [String: [UInt8]]

    /// How many diagnostics are errors.
    public var errorCount: Int { diagnostics.filter { $0.severity == .error }.count }
    /// How many diagnostics are warnings.
    public var warningCount: Int { diagnostics.filter { $0.severity == .warning }.count }
    /// Whether the marketplace has no errors.
    public var isValid: Bool { errorCount == 0 }
}
