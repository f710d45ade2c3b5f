import Crypto
import Foundation
import SetuConcurrency
import SetuEntitlements
import SetuManifest
import SetuStorage

/// Keeps the replay result in a state directory so the next run replays only
/// new commits. Each file in force is stored with what reading it found
/// (`PreparedFile`), so a run after one new commit parses only that commit's
/// files, not the whole marketplace again, and decodes a stored file's
/// manifests only when something asks for them.
///
/// The state is a base, `<state>/trust/replay.bin`, and a delta beside it,
/// `replay.delta`: the paths changed since the base, the new head and who owns
/// what. A run after a few commits rewrites only the delta; once the delta
/// reaches an eighth of the base's files, the whole state is written as a new
/// base. Each file is written aside and renamed, and a delta names the base it
/// belongs to, so a crash between the two leaves a state that still loads.
public struct ReplayStore: Sendable {
    public let directory: String

    public init(_ directory: String) {
        self.directory = directory
    }

    /// How the state on disk relates to a state in memory: the base it was
    /// loaded from (or written as) and the paths that differ from it.
    public struct Journal: Sendable {
        /// Names the base file, so a delta is never applied to another.
        public var baseID: String
        /// How many files the base holds.
        public var baseFileCount: Int
        /// The paths whose files or refused changes may differ from the base.
        public var paths: Set<String>
    }

    /// A stored replay. Who owns and approves what (history replay's view) is kept as an
    /// opaque section: the store keeps it, replay reads it.
    public struct Stored: Sendable {
        /// The trust root and the head, as commit ids in hex.
        public var trustRoot: String
        public var head: String
        public var state: EffectiveState
        public var view: ArraySlice<UInt8>
        /// `nil` when the state directory holds no copy of this state to build on.
        public var journal: Journal?

        public init(trustRoot: String, head: String, state: EffectiveState, view: ArraySlice<UInt8>, journal: Journal?) {
            self.trustRoot = trustRoot
            self.head = head
            self.state = state
            self.view = view
            self.journal = journal
        }
    }

    private var basePath: String { directory + "/trust/replay.bin" }
    private var deltaPath: String { directory + "/trust/replay.delta" }
    private static let baseMagic = Array("setu replay state\n".utf8)
    private static let deltaMagic = Array("setu replay delta\n".utf8)
    private static let format = 6

    /// The stored state, or `nil` when there is none or it cannot be used (then a full replay follows).
    /// A delta that does not belong to the base or does not read is left out: the base is an
    /// earlier state of the same history, so replay continues from there.
    public func load() -> Stored? {
        guard let bytes = AtomicFile.read(basePath), bytes.starts(with: Self.baseMagic) else { return nil }
        var stored: Stored
        do {
            var outer = ByteReader(bytes[Self.baseMagic.count...])
            guard try outer.readInt() == Self.format else { return nil }
            let baseID = try outer.readString()
            let body = try outer.readSection()
            // The base is named by the SHA-256 of its body: checked on another thread while
            // this one indexes the records, it proves every byte is as written, so the
            // records need no check of their own before being decoded on first use.
            let intact = Background { Self.name(of: body) == baseID }
            var reader = ByteReader(body)
            let root = try reader.readString()
            let head = try reader.readString()
            guard outer.isAtEnd else { return nil }
            let count = try reader.readCount()
            var files: [String: EffectiveFile] = [:]
            files.reserveCapacity(count)
            for _ in 0..<count {
                let path = try reader.readString()
                files[path] = EffectiveFile(stored: try reader.readSection(), decode: Self.decodeFile)
            }
            let refusedCount = try reader.readCount()
            var refused: [String: RefusedChange] = [:]
            refused.reserveCapacity(refusedCount)
            for _ in 0..<refusedCount {
                let change = try readRefused(&reader)
                refused[change.path] = change
            }
            let view = try reader.readSection()
            guard reader.isAtEnd, try intact.value() else { return nil }
            stored = Stored(
                trustRoot: root, head: head, state: EffectiveState(revision: head, files: files, refused: refused),
                view: view, journal: Journal(baseID: baseID, baseFileCount: count, paths: []))
        } catch {
            return nil
        }
        applyDelta(to: &stored)
        return stored
    }

    private func applyDelta(to stored: inout Stored) {
        guard let bytes = AtomicFile.read(deltaPath), bytes.starts(with: Self.deltaMagic) else { return }
        var reader = ByteReader(bytes[Self.deltaMagic.count...])
        do {
            guard try reader.readInt() == Self.format, try reader.readString() == stored.journal?.baseID else { return }
            let head = try reader.readString()
            var files: [(String, EffectiveFile?)] = []
            for _ in 0..<(try reader.readCount()) {
                let path = try reader.readString()
                files.append((path, try reader.readBool() ? try readFile(&reader) : nil))
            }
            var refused: [(String, RefusedChange?)] = []
            for _ in 0..<(try reader.readCount()) {
                let path = try reader.readString()
                refused.append((path, try reader.readBool() ? try readRefused(&reader) : nil))
            }
            let view = try reader.readSection()
            guard reader.isAtEnd else { return }
            // Read whole before any of it is applied: a delta is taken entirely or not at all.
            for (path, file) in files {
                stored.state.files[path] = file
                stored.journal?.paths.insert(path)
            }
            for (path, change) in refused {
                stored.state.refused[path] = change
                stored.journal?.paths.insert(path)
            }
            stored.head = head
            stored.state.revision = head
            stored.view = view
        } catch {
            return
        }
    }

    /// Stores a replay: as a delta on the base it came from when few paths differ from
    /// that base, else as a new base. Returns how the stored state relates to the
    /// replay, for the next save to continue from.
    public func save(trustRoot: String, state: EffectiveState, view: [UInt8], journal: Journal?) throws -> Journal {
        if let journal, journal.paths.count <= max(16, journal.baseFileCount / 8) {
            var writer = ByteWriter()
            writer.write(Self.format)
            writer.write(journal.baseID)
            writer.write(state.revision)
            let paths = journal.paths.sorted()
            var scratch = ByteWriter()
            writer.write(paths.count)
            for path in paths {
                writer.write(path)
                let file = state.files[path]
                writer.write(file != nil)
                if let file { write(file, to: &writer, scratch: &scratch) }
            }
            writer.write(paths.count)
            for path in paths {
                writer.write(path)
                let change = state.refused[path]
                writer.write(change != nil)
                if let change { write(change, to: &writer) }
            }
            writer.write(section: view[...])
            try replaceStateFile(deltaPath, with: Self.deltaMagic + writer.bytes, what: "the replay state")
            return journal
        }
        var body = ByteWriter()
        body.write(trustRoot)
        body.write(state.revision)
        body.write(state.files.count)
        var scratch = ByteWriter()
        for path in state.files.keys.sorted() {
            body.write(path)
            write(state.files[path]!, to: &body, scratch: &scratch)
        }
        body.write(state.refused.count)
        for path in state.refused.keys.sorted() {
            write(state.refused[path]!, to: &body)
        }
        body.write(section: view[...])
        // Named by its content: a delta is only ever applied to the very base it was written on,
        // and loading checks the content against the name.
        let baseID = Self.name(of: body.bytes[...])
        var writer = ByteWriter()
        writer.write(Self.format)
        writer.write(baseID)
        writer.write(section: body.bytes[...])
        try replaceStateFile(basePath, with: Self.baseMagic + writer.bytes, what: "the replay state")
        guard unlink(deltaPath) == 0 || errno == ENOENT else {
            throw ManifestError(code: .io, message: "cannot remove \(deltaPath): \(String(cString: strerror(errno)))")
        }
        return Journal(baseID: baseID, baseFileCount: state.files.count, paths: [])
    }

    /// A base's name: the SHA-256 of its body, in hex.
    private static func name(of body: ArraySlice<UInt8>) -> String {
        SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Records

    /// Writes a file's record as a section: as it was stored, when it was restored and not changed since.
    private func write(_ file: EffectiveFile, to writer: inout ByteWriter, scratch: inout ByteWriter) {
        if let stored = file.storedForm {
            writer.write(section: stored)
            return
        }
        scratch.removeAll()
        scratch.write(file.blob)
        scratch.write(file.commit)
        scratch.write(file.authorizedBy)
        scratch.write(file.approval)
        file.file.write(to: &scratch)
        writer.write(section: scratch.bytes[...])
    }

    /// Reads a delta's file record: its form is checked now, as a delta has no checksum;
    /// its fields are decoded when first asked for.
    private func readFile(_ reader: inout ByteReader) throws -> EffectiveFile {
        let record = try reader.readSection()
        var check = ByteReader(record)
        try check.skipRun()
        try check.skipRun()
        try check.skipRun()
        try check.skipApproval()
        try PreparedFile.skim(&check)
        guard check.isAtEnd else { throw ByteReader.Truncated() }
        return EffectiveFile(stored: record, decode: Self.decodeFile)
    }

    /// Decodes a record from a base whose name matched its content, or one `readFile` checked.
    @Sendable private static func decodeFile(_ record: ArraySlice<UInt8>) -> EffectiveFile {
        var reader = ByteReader(record)
        do {
            let blob = try reader.readString()
            let commit = try reader.readString()
            let authorizedBy = try reader.readString()
            let approval = try reader.readApproval()
            return EffectiveFile(
                file: try PreparedFile(from: &reader), blob: blob, commit: commit, authorizedBy: authorizedBy,
                approval: approval)
        } catch {
            preconditionFailure("a replay record that was checked on loading does not decode: \(error)")
        }
    }

    private func write(_ change: RefusedChange, to writer: inout ByteWriter) {
        writer.write(change.path)
        writer.write(change.commit)
        writer.write(change.by)
        writer.write(change.reason.rawValue)
        writer.write(change.rule.rawValue)
        writer.write(change.message)
        writer.write(change.needs)
        writer.write(change.blob ?? "")
        writer.write(change.pending != nil)
        change.pending?.write(to: &writer)
    }

    private func readRefused(_ reader: inout ByteReader) throws -> RefusedChange {
        let path = try reader.readString()
        let commit = try reader.readString()
        let by = try reader.readString()
        guard let reason = RefusedChange.Reason(rawValue: try reader.readString()) else { throw ByteReader.Truncated() }
        let rule = RuleID(rawValue: try reader.readString())
        let message = try reader.readString()
        let needs = try reader.readStrings()
        let blob = try reader.readString()
        let pending = try reader.readBool() ? try PreparedFile(from: &reader) : nil
        return RefusedChange(
            path: path, commit: commit, by: by, reason: reason, rule: rule, message: message, needs: needs,
            blob: blob.isEmpty ? nil : blob, pending: pending)
    }
}
