/// The id of a git object: its SHA-1 as 40 lowercase hex digits.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 40 hex digits.
    public let hex: String

    /// Creates an id from 40 hex digits; `nil` when the text is not one.
    public init?(hex: String) {
        let lowered = hex.lowercased()
        guard lowered.utf8.count == 40, lowered.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return nil
        }
        self.hex = lowered
    }

    init(validatedHex: String) {
        self.hex = validatedHex
    }

    /// The first seven digits, as `git log --oneline` shows them.
    public var short: String { String(hex.prefix(7)) }

    public var description: String { hex }

    public static func < (lhs: ObjectID, rhs: ObjectID) -> Bool { lhs.hex < rhs.hex }
}

/// Who made a commit, and when: git's author or committer line.
public struct Person: Sendable, Equatable {
    /// The name as recorded in the commit.
    public var name: String
    /// The email as recorded in the commit.
    public var email: String
    /// Seconds since 1970-01-01 UTC.
    public var time: Int64
    /// The recorded time zone, in minutes east of UTC.
    public var offsetMinutes: Int

    /// Creates a person.
    public init(name: String, email: String, time: Int64 = 0, offsetMinutes: Int = 0) {
        self.name = name
        self.email = email
        self.time = time
        self.offsetMinutes = offsetMinutes
    }
}

/// A commit as plain values.
public struct Commit: Sendable, Equatable {
    /// The commit's id.
    public var id: ObjectID
    /// Parent ids, first parent first; empty for a root commit.
    public var parents: [ObjectID]
    /// The commit's tree.
    public var tree: ObjectID
    /// Who wrote the change.
    public var author: Person
    /// Who made the commit.
    public var committer: Person
    /// The full commit message.
    public var message: String

    /// The first line of the message.
    public var summary: String {
        String(message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// Whether this commit joins two or more lines of history.
    public var isMerge: Bool { parents.count > 1 }
}

/// A file in a commit's tree, found without checking anything out.
public struct TreeFile: Sendable, Equatable {
    /// What the tree entry is.
    public enum Kind: Sendable, Equatable {
        /// A regular file.
        case file
        /// A regular file with the executable bit.
        case executable
        /// A symbolic link; its target is never followed.
        case symlink
        /// A submodule (a gitlink); it has no content in this repository.
        case submodule
    }

    /// Path from the repository root, with `/` separators.
    public var path: String
    /// The blob's id (for a submodule, the commit it points at).
    public var id: ObjectID
    /// What the entry is.
    public var kind: Kind
}

/// A path that differs between two trees.
public struct ChangedPath: Sendable, Equatable {
    /// How the path changed.
    public enum Status: String, Sendable, Equatable {
        case added, modified, deleted, typeChanged
    }

    /// The path, from the repository root.
    public var path: String
    /// How it changed.
    public var status: Status
    /// The entry in the new tree; `nil` when the path was deleted.
    public var file: TreeFile?

    /// Creates a changed path.
    public init(path: String, status: Status, file: TreeFile? = nil) {
        self.path = path
        self.status = status
        self.file = file
    }
}

/// The signature on a signed commit and the exact bytes it signs.
public struct CommitSignature: Sendable, Equatable {
    /// The armored signature (`-----BEGIN SSH SIGNATURE-----` for SSH signatures).
    public var signature: [UInt8]
    /// The commit object without its signature header: what the signer signed.
    public var payload: [UInt8]
}
