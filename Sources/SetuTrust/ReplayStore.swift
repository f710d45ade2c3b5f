import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest

/// Keeps the replay result in a state directory (`<state>/trust/replay.bin`)
/// so the next run replays only new commits. Each file in force is stored with
/// what reading it found (`PreparedFile`), so a run after one new commit parses
/// only that commit's files, not the whole marketplace again, and decodes a
/// stored file's manifests only when something asks for them.
struct ReplayStore {
    let directory: String

    init(_ directory: String) {
        self.directory = directory
    }

    private var path: String { directory + "/trust/replay.bin" }
    private static let magic = Array("setu replay state\n".utf8)
    private static let format = 3

    /// The stored state, or `nil` when there is none or it cannot be used (then a full replay follows).
    func load() -> (trustRoot: ObjectID, head: ObjectID, state: EffectiveState, view: TrustView)? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        guard bytes.starts(with: Self.magic) else { return nil }
        var reader = ByteReader(bytes[Self.magic.count...])
        do {
            guard try reader.readInt() == Self.format,
                  let root = ObjectID(hex: try reader.readString()), let head = ObjectID(hex: try reader.readString()) else { return nil }
            var files: [String: EffectiveFile] = [:]
            for _ in 0..<(try reader.readCount()) {
                let blob = try reader.readString()
                let commit = try reader.readString()
                let authorizedBy = try reader.readString()
                let approval = try readApproval(&reader)
                let file = try PreparedFile(from: &reader)
                files[file.path] = EffectiveFile(file: file, blob: blob, commit: commit, authorizedBy: authorizedBy, approval: approval)
            }
            var refused: [String: RefusedChange] = [:]
            for _ in 0..<(try reader.readCount()) {
                let path = try reader.readString()
                let commit = try reader.readString()
                let by = try reader.readString()
                guard let reason = RefusedChange.Reason(rawValue: try reader.readString()) else { return nil }
                let rule = try reader.readString()
                let message = try reader.readString()
                let needs = try reader.readStrings()
                let pending = try reader.readBool() ? try PreparedFile(from: &reader) : nil
                refused[path] = RefusedChange(path: path, commit: commit, by: by, reason: reason, rule: rule, message: message,
                                              needs: needs, pending: pending)
            }
            let view = try TrustView(from: &reader)
            guard reader.isAtEnd else { return nil }
            return (root, head, EffectiveState(revision: head.hex, files: files, refused: refused), view)
        } catch {
            return nil
        }
    }

    func save(_ outcome: ReplayOutcome) throws {
        var writer = ByteWriter()
        writer.write(Self.format)
        writer.write(outcome.trustRoot.hex)
        writer.write(outcome.state.revision)
        writer.write(outcome.state.files.count)
        for path in outcome.state.files.keys.sorted() {
            let file = outcome.state.files[path]!
            writer.write(file.blob)
            writer.write(file.commit)
            writer.write(file.authorizedBy)
            write(file.approval, to: &writer)
            file.file.write(to: &writer)
        }
        writer.write(outcome.state.refused.count)
        for path in outcome.state.refused.keys.sorted() {
            let change = outcome.state.refused[path]!
            writer.write(change.path)
            writer.write(change.commit)
            writer.write(change.by)
            writer.write(change.reason.rawValue)
            writer.write(change.rule)
            writer.write(change.message)
            writer.write(change.needs)
            writer.write(change.pending != nil)
            change.pending?.write(to: &writer)
        }
        (outcome.view ?? TrustView(files: outcome.state.files)).write(to: &writer)
        try StateFile.replace(path, with: Self.magic + writer.bytes, what: "the replay state")
    }

    private func write(_ approval: Approval?, to writer: inout ByteWriter) {
        writer.write(approval != nil)
        if let approval {
            writer.write(approval.commit)
            writer.write(approval.approver)
        }
    }

    private func readApproval(_ reader: inout ByteReader) throws -> Approval? {
        guard try reader.readBool() else { return nil }
        return Approval(commit: try reader.readString(), approver: try reader.readString())
    }
}
