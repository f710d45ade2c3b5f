/// An error from reading or writing a git repository.
///
/// `code` says what went wrong in terms a caller can act on; `message` is the
/// text to show a user, and for failures inside libgit2 it carries libgit2's own
/// message and the function that failed.
public struct GitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: Sendable, Equatable {
        /// No repository at the given path.
        case repositoryNotFound
        /// The repository has no commits yet.
        case emptyRepository
        /// The revision does not name a commit in the repository.
        case revisionNotFound
        /// A blob is larger than the caller allows; it was not read.
        case blobTooLarge
        /// Fetching from a remote failed: it could not be reached, or refused.
        case fetchFailed
        /// A libgit2 call failed for another reason.
        case libgit2
    }

    /// What kind of failure this is.
    public var code: Code
    /// A message that says what failed and, where possible, what to do.
    public var message: String
    /// The libgit2 function that failed, when the failure came from libgit2.
    public var function: String?

    /// Creates an error.
    public init(code: Code, message: String, function: String? = nil) {
        self.code = code
        self.message = message
        self.function = function
    }

    public var description: String {
        if let function { return "\(message) (\(function))" }
        return message
    }
}
