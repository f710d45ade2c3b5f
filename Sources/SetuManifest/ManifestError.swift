/// An error that stops SetuManifest from doing its work at all: a schema that
/// does not compile, a file that cannot be read.
///
/// Problems *in* manifests are not errors: they are `Diagnostic`s, reported
/// together so a user can fix them all in one pass.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: Sendable, Equatable {
        /// A JSON Schema is malformed.
        case invalidSchema
        /// A JSON Schema uses a keyword this validator does not support.
        case unsupportedKeyword
        /// A `$ref` names a document that is not among the loaded schemas.
        case unresolvedReference
        /// A file or folder could not be read or written.
        case io
    }

    /// What kind of failure this is.
    public var code: Code
    /// What failed and what to do about it.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
