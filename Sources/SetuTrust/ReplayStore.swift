import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest

/// Keeps the replay result in a state directory (`<state>/trust/replay.json`)
/// so the next run replays only new commits. File contents are not stored:
/// they are read back from git by blob id.
struct ReplayStore {
    let directory: String

    init(_ directory: String) {
        self.directory = directory
    }

    private var path: String { directory + "/trust/replay.json" }

    struct Stored: Codable {
        struct File: Codable {
            var blob: String
            var commit: String
            var authorizedBy: String
            var approval: Approval?
        }
        var format = 1
        var trustRoot: String
        var head: String
        var files: [String: File]
        var refused: [RefusedChange]
    }

    /// The stored state, or `nil` when there is none or it cannot be used (then a full replay follows).
    func load(repository: Repository, limits: LoadLimits) throws -> (trustRoot: ObjectID, head: ObjectID, state: EffectiveState)? {
        guard let data = FileManager.default.contents(atPath: path),
              let stored = try? JSONDecoder().decode(Stored.self, from: data), stored.format == 1,
              let root = ObjectID(hex: stored.trustRoot), let head = ObjectID(hex: stored.head) else { return nil }
        var files: [String: EffectiveFile] = [:]
        for (file, entry) in stored.files {
            guard let blob = ObjectID(hex: entry.blob),
                  let content = try? repository.readBlob(blob, maxSize: limits.maxFileBytes) else { return nil }
            files[file] = EffectiveFile(content: content, blob: entry.blob, commit: entry.commit,
                                        authorizedBy: entry.authorizedBy, approval: entry.approval)
        }
        let refused = Dictionary(stored.refused.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        return (root, head, EffectiveState(revision: stored.head, files: files, refused: refused))
    }

    func save(_ outcome: ReplayOutcome) throws {
        let stored = Stored(
            trustRoot: outcome.trustRoot.hex, head: outcome.state.revision,
            files: outcome.state.files.mapValues { Stored.File(blob: $0.blob, commit: $0.commit, authorizedBy: $0.authorizedBy, approval: $0.approval) },
            refused: outcome.state.refused.values.sorted { $0.path < $1.path })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try FileManager.default.createDirectory(atPath: directory + "/trust", withIntermediateDirectories: true)
            // Written aside and renamed, so a crash never leaves half a state behind.
            let temporary = path + ".tmp"
            try encoder.encode(stored).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                throw ManifestError(code: .io, message: "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            throw ManifestError(code: .io, message: "cannot write the replay state to \(path): \(error.localizedDescription)")
        }
    }
}
