import SetuConcurrency
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
///
/// A file restored from a replay state keeps its stored form and decodes it
/// the first time any of its fields is read: a run after one new commit loads
/// a state of tens of thousands of files but looks at few of them.
public struct EffectiveFile: Sendable, Hashable {
    struct Fields: Sendable, Hashable {
        var file: PreparedFile
        var blob: String
        var commit: String
        var authorizedBy: String
        var approval: Approval?
    }

    /// Decoded, or stored until asked. Replay makes and reads decoded files
    /// all the time, so they carry no lock and no extra allocation.
    private enum Form: Sendable {
        case decoded(Fields)
        case stored(DecodedOnce<Fields>)
    }

    private let form: Form

    private var fields: Fields {
        switch form {
        case .decoded(let fields): return fields
        case .stored(let stored): return stored.value
        }
    }

    /// The file: its bytes and what they hold, read once.
    public var file: PreparedFile { fields.file }

    /// The git blob id of the content.
    public var blob: String { fields.blob }
    /// The commit that brought this version into force.
    public var commit: String { fields.commit }
    /// Who authorized it (an email, or `anyone` when verification is `none`).
    public var authorizedBy: String { fields.authorizedBy }
    /// For a subscription, the approval that made it take effect.
    public var approval: Approval? { fields.approval }

    /// The file's bytes.
    public var content: [UInt8] { file.bytes }

    /// Creates an effective file.
    public init(file: PreparedFile, blob: String, commit: String, authorizedBy: String, approval: Approval? = nil) {
        form = .decoded(Fields(file: file, blob: blob, commit: commit, authorizedBy: authorizedBy, approval: approval))
    }

    /// A file restored from its stored form, which `decode` reads the first
    /// time a field is asked for. `decode` must not fail on a form that was
    /// checked when it was loaded.
    public init(stored: ArraySlice<UInt8>, decode: @escaping @Sendable (ArraySlice<UInt8>) -> EffectiveFile) {
        form = .stored(DecodedOnce(stored: stored) { decode($0).fields })
    }

    /// The stored form the file was restored from, if it was: it is written back as it is.
    public var storedForm: ArraySlice<UInt8>? {
        if case .stored(let stored) = form { return stored.stored }
        return nil
    }

    public static func == (lhs: EffectiveFile, rhs: EffectiveFile) -> Bool {
        lhs.fields == rhs.fields
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fields)
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
    public var rule: RuleID
    /// What is wrong, or what is needed: "waiting for an approver of cbse to merge it".
    public var message: String
    /// Who could make it take effect (approvers or owners), when that is a list of people.
    public var needs: [String]
    /// The git blob id of the version refused, when there is one: an approval in place names it.
    public var blob: String?
    /// For a pending subscription: the version waiting for approval. Reports
    /// leave it out (it is not part of the Codable form).
    public var pending: PreparedFile?

    private enum CodingKeys: String, CodingKey {
        case path, commit, by, reason, rule, message, needs, blob
    }

    /// Creates a refused change.
    public init(
        path: String, commit: String, by: String, reason: Reason, rule: RuleID, message: String,
        needs: [String] = [], blob: String? = nil, pending: PreparedFile? = nil
    ) {
        self.path = path
        self.commit = commit
        self.by = by
        self.reason = reason
        self.rule = rule
        self.message = message
        self.needs = needs
        self.blob = blob
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
