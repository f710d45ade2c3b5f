import SetuManifest

/// Who approved a subscription, and where.
public struct Approval: Sendable, Hashable, Codable {
    /// The commit that made or merged the approved version.
    public var commit: String
    /// The approver's email.
    public var approver: String

    /// Creates an approval.
    public init(commit: String, approver: String) {
        self.commit = commit
        self.approver = approver
    }
}

/// The version of one path that is in force: the last one that was authorized
/// (and, for subscriptions, approved) and valid.
public struct EffectiveFile: Sendable, Hashable {
    /// The file: its bytes and what they hold, read once.
    public var file: PreparedFile
    /// The git blob id of the content.
    public var blob: String
    /// The commit that brought this version into force.
    public var commit: String
    /// Who authorized it (an email, or `anyone` when verification is `none`).
    public var authorizedBy: String
    /// For a subscription, the approval that made it take effect.
    public var approval: Approval?

    /// The file's bytes.
    public var content: [UInt8] { file.bytes }

    /// Creates an effective file.
    public init(file: PreparedFile, blob: String, commit: String, authorizedBy: String, approval: Approval? = nil) {
        self.file = file
        self.blob = blob
        self.commit = commit
        self.authorizedBy = authorizedBy
        self.approval = approval
    }
}

/// A change that did not take effect, and why.
public struct RefusedChange: Sendable, Hashable, Codable {
    /// Why it did not take effect.
    public enum Reason: String, Sendable, Hashable, Codable {
        /// A subscription change waiting for an approver of the API's publisher.
        case pendingApproval = "pending-approval"
        /// Made by someone who does not own the path.
        case unauthorized
        /// The new version is not a valid manifest.
        case invalid
    }

    /// The path changed.
    public var path: String
    /// The commit that changed it.
    public var commit: String
    /// Who made the change, as far as the verification mode can tell.
    public var by: String
    /// Why it did not take effect.
    public var reason: Reason
    /// The rule id, e.g. `trust.owner` or `schema.type`.
    public var rule: String
    /// What is wrong, or what is needed: "waiting for an approver of cbse to merge it".
    public var message: String
    /// Who could make it take effect (approvers or owners), when that is a list of people.
    public var needs: [String]
    /// For a pending subscription: the version waiting for approval. Reports
    /// leave it out (it is not part of the Codable form).
    public var pending: PreparedFile?

    private enum CodingKeys: String, CodingKey {
        case path, commit, by, reason, rule, message, needs
    }

    /// Creates a refused change.
    public init(path: String, commit: String, by: String, reason: Reason, rule: String, message: String,
                needs: [String] = [], pending: PreparedFile? = nil) {
        self.path = path
        self.commit = commit
        self.by = by
        self.reason = reason
        self.rule = rule
        self.message = message
        self.needs = needs
        self.pending = pending
    }
}

/// The marketplace as it is in force at one commit: every path's effective
/// version, and every change still outstanding.
public struct EffectiveState: Sendable, Hashable {
    /// The commit this is the state at.
    public var revision: String
    /// The effective version of each path.
    public var files: [String: EffectiveFile]
    /// The latest refused change of each path that has not been superseded.
    public var refused: [String: RefusedChange]

    /// The refused changes for one reason, by path.
    public func refused(_ reason: RefusedChange.Reason) -> [RefusedChange] {
        refused.values.filter { $0.reason == reason }.sorted { $0.path < $1.path }
    }

    /// Creates a state.
    public init(revision: String, files: [String: EffectiveFile] = [:], refused: [String: RefusedChange] = [:]) {
        self.revision = revision
        self.files = files
        self.refused = refused
    }

    /// The effective files as a marketplace's source files, sorted by path.
    public var sourceFiles: [SourceFile] {
        files.keys.sorted().map { SourceFile(path: $0, content: .prepared(files[$0]!.file)) }
    }
}
