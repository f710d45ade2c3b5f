import ArgumentParser
import Foundation
import SetuGit
import SetuManifest

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new marketplace repository with a platform policy, plans, schemas and a first commit.",
        discussion: """
            Example:
              setu init my-marketplace --admin admin@platform.example --display-name "State API Marketplace"
              setu validate --repo my-marketplace
            """)

    @Argument(help: ArgumentHelp("The folder to create; it must not exist or be empty.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The first platform admin's email (default: git's user.email).", valueName: "email"))
    var admin: String?

    @Option(name: .long, help: ArgumentHelp("The platform's name in manifests.", valueName: "name"))
    var name: String = "marketplace"

    @Option(name: .long, help: ArgumentHelp("The platform's display name.", valueName: "text"))
    var displayName: String = "API Marketplace"

    func run() throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory) {
            let contents = (try? manager.contentsOfDirectory(atPath: directory)) ?? ["?"]
            guard contents.isEmpty else {
                throw CLIFailure("'\(directory)' already exists and is not empty; choose a new folder")
            }
        }
        guard ManifestName.isValid(name) else {
            throw ValidationError("--name must be 1-63 lowercase letters, digits or '-'")
        }
        let repository = try Repository.create(at: directory)
        guard let email = admin ?? repository.configuredIdentity()?.email else {
            throw CLIFailure("no admin email: pass --admin you@example.org (or set git's user.email)")
        }
        let files: [String: String] = [
            "policies/platform.yaml": Self.platform(name: name, displayName: displayName, admin: email),
            "policies/plans.yaml": Self.plans,
            "catalog/README.md": "Publishers: one folder per publisher, catalog/<publisher>/publisher.yaml plus one <api>.yaml per API.\n",
            "subscriptions/README.md": "Consumers: one folder per consumer, subscriptions/<consumer>/consumer.yaml plus one file per subscription.\n",
            "README.md": Self.readme(displayName: displayName),
        ]
        do {
            for (path, text) in files {
                let url = URL(fileURLWithPath: directory).appendingPathComponent(path)
                try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: url)
            }
            let schemas = URL(fileURLWithPath: directory).appendingPathComponent("schemas")
            try manager.createDirectory(at: schemas, withIntermediateDirectories: true)
            for (file, bytes) in ManifestSchemas.files {
                try Data(bytes).write(to: schemas.appendingPathComponent(file))
            }
        } catch {
            throw CLIFailure("cannot write into \(directory): \(error.localizedDescription)")
        }
        let author = repository.configuredIdentity() ?? Person(name: email, email: email)
        let commit = try repository.commitWorkTree(message: "Create the \(displayName)", author: author)
        print(
            """
            created \(directory) with a first commit \(commit.short); \(email) is its admin.
            next:
              setu validate --repo \(directory)
              setu import-openapi api.openapi.yaml --publisher <publisher> --into \(directory)
            """)
    }

    static func platform(name: String, displayName: String, admin: String) -> String {
        """
        # yaml-language-server: $schema=../schemas/platform.schema.json
        apiVersion: setu/v1
        kind: Platform
        metadata:
          name: \(name)
        spec:
          displayName: \(YAMLText.scalar(displayName))
          admins:
            - email: \(YAMLText.scalar(admin))
          # none: every commit counts; authors: the author's email; signatures: SSH-signed commits
          verification: authors
          upstreams:
            # Without an allow-list any public host may be an upstream; with one, only these:
            # allow: [api.example.gov.in, "*.example.gov.in"]
            allowLoopback: false

        """
    }

    static let plans = """
        # yaml-language-server: $schema=../schemas/plan.schema.json
        apiVersion: setu/v1
        kind: Plan
        metadata:
          name: standard
        spec:
          displayName: Standard
          rateLimit: {requests: 10, per: second}
          quota: {requests: 10000, per: day}
        ---
        # yaml-language-server: $schema=../schemas/plan.schema.json
        apiVersion: setu/v1
        kind: Plan
        metadata:
          name: premium
        spec:
          displayName: Premium
          rateLimit: {requests: 100, per: second, burst: 200}
          quota: {requests: 1000000, per: month}

        """

    static func readme(displayName: String) -> String {
        """
        # \(displayName)

        A Setu marketplace: publishers list APIs under catalog/, consumers subscribe under
        subscriptions/, and platform admins keep policies/. Check a change with
        `setu validate --worktree` before committing it.

        """
    }
}
