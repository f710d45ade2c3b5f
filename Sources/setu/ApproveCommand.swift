import ArgumentParser
import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuTrust

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve, in place, a subscription change that is already on the branch and waits for approval.",
        discussion: """
            A consumer who commits a subscription straight to the branch leaves it pending. An
            approver of the API's publisher approves it in place with an empty commit whose message
            carries a trailer naming the path and the exact version (git blob) approved:

              Setu-Approve: subscriptions/acme-bank/marksheet.yaml 3b18e512dba79e4c8300dd08aeb37f8e728b8dad

            This command replays the branch, finds the version waiting, and makes that commit with
            git, so your identity and commit signing (`gpg.format=ssh`) apply as to any commit. The
            approval counts only when its commit is by an approver under the platform's
            verification mode, and it approves that version only: a later edit needs a new one.
            Push the commit as usual.

            Exit codes: 0 the approval was committed (or printed), 1 nothing at the path waits for
            approval, 2 a usage or I/O error.

            Examples:
              setu approve subscriptions/acme-bank/marksheet.yaml && git push
              setu approve subscriptions/acme-bank/marksheet.yaml --print
            """)

    @Argument(help: ArgumentHelp("The subscription file waiting for approval, from the repository root.", valueName: "path"))
    var path: String

    @Option(name: .long, help: ArgumentHelp("The marketplace repository (a work tree: the commit is made in it).", valueName: "path"))
    var repo: String = "."

    @OptionGroup var trust: TrustOptions

    @Flag(name: .long, help: "Print the commit message instead of committing.")
    var print = false

    func run() throws {
        let repository = try Repository(path: repo)
        let head = try repository.resolveCommit("HEAD")
        let outcome = try TrustEngine.replay(repository, head: head, trustRoot: trust.trustRootID(in: repository), stateDirectory: trust.state)
        let path = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        guard let waiting = outcome.state.refused[path], waiting.reason == .pendingApproval, let blob = waiting.blob else {
            let why: String
            if let refused = outcome.state.refused[path] {
                why = "its change in \(refused.commit.prefix(7)) is \(refused.reason.rawValue), not waiting for approval: \(refused.message)"
            } else if outcome.state.files[path] != nil {
                why = "the version on the branch is already in force"
            } else {
                why = "no such file is on the branch"
            }
            FileHandle.standardError.write(Data("error: nothing at \(path) waits for approval at HEAD (\(head.short)): \(why)\n".utf8))
            throw ExitCode(1)
        }
        let subscription = waiting.pending?.subscriptions.first
        let what = subscription.map { "\($0.consumer)'s subscription to \($0.api) (\($0.plan))" } ?? path
        let approval = ReplayCommit.InPlaceApproval(path: path, blob: blob)
        let message = "Approve \(what)\n\n\(approval.line)\n"
        if print {
            write(message)
            return
        }
        let committer = ((try? git(["config", "user.email"])) ?? "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if !committer.isEmpty, !waiting.needs.isEmpty, !waiting.needs.contains(committer) {
            FileHandle.standardError.write(
                Data(
                    """
                    warning: your commits are by \(committer), who does not approve for this API: the approval counts \
                    only when one of \(waiting.needs.joined(separator: ", ")) makes it\n
                    """.utf8))
        }
        _ = try git(["commit", "--allow-empty", "--quiet", "-F", "-"], input: message)
        let commit = try git(["rev-parse", "--short", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        write("approved \(what) at blob \(blob.prefix(12)) in commit \(commit); push it to take effect\n")
    }

    /// Runs git in the repository, as the user would.
    private func git(_ arguments: [String], input: String? = nil) throws -> String {
        do {
            return try GitProcess.run(in: repo, arguments, input: input)
        } catch .cannotRun(let reason) {
            throw CLIFailure("cannot run git: \(reason)")
        } catch .failed(let said) {
            throw CLIFailure("git \(arguments.first ?? "") failed: \(said.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}
