import Foundation
import SetuGit
import SetuTestSupport
import Testing

struct RepositoryTests {
    /// A repository with three commits on main, a tag, and a merged side branch.
    func history() throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.write("catalog/a/publisher.yaml", "one\n")
        try fixture.commitAll("first")
        try fixture.git("tag", "v1")
        try fixture.write("catalog/a/api.yaml", "two\n")
        try fixture.write("README.md", "outside the marketplace folders\n")
        try fixture.commitAll("second")
        try fixture.git("checkout", "-q", "-b", "feature")
        try fixture.write("subscriptions/c/sub.yaml", "three\n")
        try fixture.commitAll("on a branch", author: "Dev <dev@acme.example>")
        try fixture.git("checkout", "-q", "main")
        try fixture.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature", author: "Approver <registrar@cbse.example>")
        return fixture
    }

    @Test func resolvesRevisionsOfEveryForm() throws {
        let fixture = try history()
        let repository = try Repository(path: fixture.path)
        let head = try fixture.git("rev-parse", "HEAD")
        #expect(try repository.resolveCommit("HEAD").hex == head)
        #expect(try repository.resolveCommit("main").hex == head)
        #expect(try repository.resolveCommit(String(head.prefix(10))).hex == head)
        #expect(try repository.resolveCommit("v1").hex == fixture.git("rev-parse", "v1^{commit}"))
        #expect(try repository.resolveCommit("HEAD~2").hex == fixture.git("rev-parse", "HEAD~2"))
    }

    @Test func opensBareRepositoriesAndFileURLs() throws {
        let fixture = try history()
        let bare = TemporaryDirectory()
        try run("/usr/bin/git", ["clone", "-q", "--bare", fixture.path, bare.child("mirror.git")])
        let repository = try Repository(path: "file://" + bare.child("mirror.git"))
        #expect(repository.isBare)
        #expect(try repository.resolveCommit("main").hex == fixture.git("rev-parse", "HEAD"))
    }

    @Test func missingRepositoryIsAClearError() throws {
        let folder = TemporaryDirectory()
        #expect(throws: GitError.self) { try Repository(path: folder.child("nothing")) }
        do {
            _ = try Repository(path: folder.child("nothing"))
        } catch let error as GitError {
            #expect(error.code == .repositoryNotFound)
            #expect(error.message.hasPrefix("no git repository at '\(folder.child("nothing"))'"))
            #expect(error.function == "git_repository_open_ext")
        }
    }

    @Test func listsFilesUnderRootsWithoutCheckingOut() throws {
        let fixture = try history()
        let repository = try Repository(path: fixture.path)
        let files = try repository.files(in: repository.resolveCommit("HEAD"), under: ["catalog", "subscriptions", "policies"])
        #expect(files.map(\.path) == ["catalog/a/api.yaml", "catalog/a/publisher.yaml", "subscriptions/c/sub.yaml"])
        #expect(files.allSatisfy { $0.kind == .file })
        let blob = try repository.readBlob(files[0].id, maxSize: 100)
        #expect(String(decoding: blob, as: UTF8.self) == "two\n")
    }

    @Test func refusesToReadBlobsOverTheCap() throws {
        let fixture = try history()
        let repository = try Repository(path: fixture.path)
        let file = try repository.files(in: repository.resolveCommit("HEAD"), under: ["catalog"])[0]
        #expect(try repository.blobSize(file.id) == 4)
        do {
            _ = try repository.readBlob(file.id, maxSize: 3)
            Issue.record("an oversized blob was read")
        } catch let error as GitError {
            #expect(error.code == .blobTooLarge)
        }
    }

    @Test func reportsSymlinksAndSubmodulesByKind() throws {
        let fixture = try GitFixture()
        try fixture.write("catalog/a/publisher.yaml", "x\n")
        try FileManager.default.createSymbolicLink(atPath: fixture.path + "/catalog/a/link.yaml", withDestinationPath: "publisher.yaml")
        try fixture.commitAll("files")
        try fixture.git("update-index", "--add", "--cacheinfo", "160000,\(String(repeating: "b", count: 40)),catalog/sub")
        try fixture.git("commit", "-q", "-m", "submodule")
        let repository = try Repository(path: fixture.path)
        let files = try repository.files(in: repository.resolveCommit("HEAD"), under: ["catalog"])
        #expect(files.map { "\($0.path) \($0.kind)" } == ["catalog/a/link.yaml symlink", "catalog/a/publisher.yaml file", "catalog/sub submodule"])
    }

    @Test func firstParentHistoryWithAuthorsAndMerges() throws {
        let fixture = try history()
        let repository = try Repository(path: fixture.path)
        let history = try repository.firstParentHistory(from: repository.resolveCommit("HEAD"))
        #expect(history.map(\.summary) == ["Merge feature", "second", "first"])
        #expect(history[0].isMerge)
        #expect(history[0].parents.count == 2)
        #expect(history[0].author.email == "registrar@cbse.example")
        #expect(history[0].committer.name == "Approver")
        #expect(history[0].message == "Merge feature\n")
        #expect(history[2].parents.isEmpty)
        #expect(try repository.commit(history[0].parents[1]).author.email == "dev@acme.example")
        #expect(history[0].author.time > 1_600_000_000)
    }

    @Test func diffsTwoCommits() throws {
        let fixture = try history()
        try fixture.remove("catalog/a/publisher.yaml")
        try fixture.write("catalog/a/api.yaml", "changed\n")
        try fixture.commitAll("change")
        let repository = try Repository(path: fixture.path)
        let changes = try repository.changedPaths(from: repository.resolveCommit("HEAD~1"), to: repository.resolveCommit("HEAD"), under: ["catalog"])
        #expect(changes.map { "\($0.status) \($0.path)" } == ["modified catalog/a/api.yaml", "deleted catalog/a/publisher.yaml"])
        let fromEmpty = try repository.changedPaths(from: nil, to: repository.resolveCommit("v1"), under: ["catalog", "policies"])
        #expect(fromEmpty.map { "\($0.status) \($0.path) \($0.file?.kind == .file)" } == ["added catalog/a/publisher.yaml true"])
    }

    @Test func diffFollowsGitsEntryOrderForFoldersAndFilesThatShareAPrefix() throws {
        let fixture = try GitFixture()
        for path in ["catalog/p/a.yaml", "catalog/p/a/x.yaml", "catalog/p/a-b.yaml", "catalog/p/a0.yaml", "catalog/q.yaml"] {
            try fixture.write(path, "one\n")
        }
        try fixture.commitAll("first")
        for path in ["catalog/p/a.yaml", "catalog/p/a/x.yaml", "catalog/p/a0.yaml"] {
            try fixture.write(path, "two\n")
        }
        try fixture.remove("catalog/p/a-b.yaml")
        try fixture.write("catalog/p/a/y.yaml", "new\n")
        try fixture.commitAll("second")
        let repository = try Repository(path: fixture.path)
        let changes = try repository.changedPaths(from: repository.resolveCommit("HEAD~1"), to: repository.resolveCommit("HEAD"), under: ["catalog"])
        #expect(
            changes.map { "\($0.status) \($0.path)" }.sorted() == [
                "added catalog/p/a/y.yaml", "deleted catalog/p/a-b.yaml", "modified catalog/p/a.yaml",
                "modified catalog/p/a/x.yaml", "modified catalog/p/a0.yaml",
            ])
        let git = try fixture.git("diff", "--name-status", "HEAD~1", "HEAD")
        #expect(git.split(separator: "\n").count == changes.count)
    }

    @Test func extractsSSHSignatureAndSignedPayload() throws {
        let keys = TemporaryDirectory()
        try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", keys.child("id")])
        let fixture = try GitFixture()
        try fixture.write("policies/platform.yaml", "x\n")
        try fixture.commitAll("unsigned")
        try fixture.write("policies/platform.yaml", "y\n")
        try fixture.git("add", "-A")
        try fixture.git("-c", "gpg.format=ssh", "-c", "user.signingkey=\(keys.child("id"))", "commit", "-q", "-S", "-m", "signed")
        let repository = try Repository(path: fixture.path)
        #expect(try repository.signature(of: repository.resolveCommit("HEAD~1")) == nil)
        let signed = try #require(try repository.signature(of: repository.resolveCommit("HEAD")))
        let armored = String(decoding: signed.signature, as: UTF8.self)
        #expect(armored.hasPrefix("-----BEGIN SSH SIGNATURE-----"))
        let payload = String(decoding: signed.payload, as: UTF8.self)
        #expect(payload.hasPrefix("tree "))
        #expect(payload.hasSuffix("\nsigned\n"))
        #expect(!payload.contains("gpgsig"))

        // The payload is exactly what ssh-keygen verifies the signature against.
        try Data(signed.signature).write(to: URL(fileURLWithPath: keys.child("sig")))
        let publicKey = try String(contentsOfFile: keys.child("id.pub"), encoding: .utf8)
        try Data("signer@example \(publicKey)".utf8).write(to: URL(fileURLWithPath: keys.child("allowed")))
        let verified = try run(
            "/usr/bin/ssh-keygen", ["-Y", "verify", "-f", keys.child("allowed"), "-I", "signer@example", "-n", "git", "-s", keys.child("sig")],
            input: Data(signed.payload))
        #expect(verified.status == 0, "\(verified.stderr)")
    }

    @Test func createsAndCommitsAWorkTree() throws {
        let folder = TemporaryDirectory()
        let repository = try Repository.create(at: folder.child("new"))
        #expect(repository.isEmpty)
        try FileManager.default.createDirectory(atPath: folder.child("new/policies"), withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: folder.child("new/policies/x.yaml")))
        let first = try repository.commitWorkTree(message: "first", author: Person(name: "Admin", email: "admin@setu.example"))
        #expect(!repository.isEmpty)
        #expect(try repository.resolveCommit("main") == first)
        let commit = try repository.commit(first)
        #expect(commit.author.email == "admin@setu.example")
        #expect(commit.parents.isEmpty)
        #expect(try repository.files(in: first, under: ["policies"]).map(\.path) == ["policies/x.yaml"])
        try Data("again\n".utf8).write(to: URL(fileURLWithPath: folder.child("new/policies/x.yaml")))
        let second = try repository.commitWorkTree(message: "second", author: Person(name: "Admin", email: "admin@setu.example"))
        #expect(try repository.commit(second).parents == [first])
    }
}
