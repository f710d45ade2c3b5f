import ArgumentParser
import SetuGit
import SetuManifest
import SetuSources
import SetuTrust

/// Where to read a marketplace from: a revision of a repository, or its work tree.
struct MarketplaceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The marketplace repository: a path or file:// URL.", valueName: "path"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp("The revision to read: a branch, tag, commit id or HEAD~2.", valueName: "rev"))
    var rev: String?

    @Flag(name: .long, help: "Read the files in the work tree, committed or not (for pre-commit hooks).")
    var worktree = false

    func validate() throws {
        if worktree, rev != nil {
            throw ValidationError("--rev and --worktree exclude each other: --worktree reads uncommitted files, --rev a commit")
        }
    }

    /// The files and a label for what was read (`main (1a2b3c4)` or `work tree`).
    func load(limits: LoadLimits = .standard) throws -> (files: [SourceFile], label: String) {
        if worktree {
            return (try WorktreeReader.read(root: repo, limits: limits), "work tree")
        }
        let repository = try Repository(path: repo)
        let revision = rev ?? "HEAD"
        let commit = try repository.resolveCommit(revision)
        return (try GitMarketplaceReader.files(in: repository, at: commit, limits: limits), "\(revision) (\(commit.short))")
    }
}
