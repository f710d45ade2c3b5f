import Foundation
import SetuEntitlements
import SetuGateway
import SetuGit
import SetuManifest
import SetuTrust

/// A failure to reconcile, said so that an operator knows what to fix.
public struct ReconcileError: Error, Sendable, CustomStringConvertible {
    /// What failed and what to fix.
    public var message: String
    /// The message.
    public var description: String { message }
}

/// One reconcile, start to end: fetch → resolve the branch → unchanged? stop → replay →
/// derive entitlements → build the gateway snapshot. Synchronous and blocking (libgit2);
/// the reconcile service runs it on a thread of its own, one at a time.
// @unchecked: only the reconcile service uses it, one reconcile at a time.
final class Reconciler: @unchecked Sendable {
    enum Outcome {
        /// A new snapshot to serve, and what the step found.
        case applied(MarketplaceEngine.Step, GatewaySnapshot)
        case unchanged(revision: String)
    }

    private let configuration: ServeConfiguration
    /// The commit and day of the snapshot last built: entitlements expire by date, so a
    /// new day is a change even without new commits.
    private var last: (head: ObjectID, day: String)?
    /// The marketplace as of the last reconcile, which the next one continues from.
    private var engine: MarketplaceEngine

    init(configuration: ServeConfiguration) {
        self.configuration = configuration
        engine = MarketplaceEngine(stateDirectory: configuration.stateDirectory, savesEachStep: false)
    }

    /// Writes the replay and entitlements of the last reconcile to the state directory, so
    /// that a restart goes on from them; `wait` waits for the writes to end.
    func save(wait: Bool = false) throws {
        try engine.save()
        if wait { try engine.finishSaving() }
    }

    func reconcile(force: Bool) throws -> Outcome {
        let repository = try open()
        let head: ObjectID
        do {
            head = try repository.resolveCommit("refs/heads/" + configuration.branch)
        } catch let error as GitError where error.code == .revisionNotFound || error.code == .emptyRepository {
            throw ReconcileError(message: "branch '\(configuration.branch)' not found in \(sourceDescription): \(error.message)")
        }
        let day = ManifestDate.today()
        if !force, let last, last.head == head, last.day == day {
            return .unchanged(revision: head.hex)
        }
        let trustRoot = try configuration.trustRoot.map { try repository.resolveCommit($0) }
        let step = try engine.step(repository, to: head, trustRoot: trustRoot, today: day, snapshot: true)
        last = (head, day)
        return .applied(step, step.snapshot!)
    }

    var sourceDescription: String {
        switch configuration.source {
        case .local(let path): return path
        case .remote(let url): return url
        }
    }

    /// A local repository stays open between reconciles: libgit2 keeps the objects it read
    /// (the trees the last reconcile ended on), finds new commits and packs as they come,
    /// and reads references afresh each time.
    private var local: Repository?

    private func open() throws -> Repository {
        switch configuration.source {
        case .local(let path):
            if let local { return local }
            local = try Repository(path: path)
            return local!
        case .remote(let url):
            return try Repository.mirror(from: url, into: configuration.stateDirectory + "/mirror.git")
        }
    }
}
