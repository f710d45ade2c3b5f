import Foundation
import SetuManifest
import SetuSources

/// Builds the demo's marketplace repository from the example marketplace, with the
/// history a real one would have: an admin sets up the policies; each publisher registers
/// on a branch that an admin merges, then lists its APIs; each consumer registers the same
/// way; consumers subscribe on branches that an approver of the API's publisher merges;
/// one subscription is pushed straight to main and waits for approval.
///
/// Commits are made with the `git` command line, as the people of the example would make them.
struct DemoRepository {
    /// The subscription left waiting for approval.
    static let pendingSubscription = "subscriptions/swift-loans/vehicle-registration.yaml"

    let example: String
    let path: String
    /// The sample upstreams' base URL, which replaces the example's upstream hosts.
    let upstreamBase: String
    private var clock = 1_788_220_800  // 2026-09-01, then one hour per commit

    init(example: String, path: String, upstreamBase: String) {
        self.example = example
        self.path = path
        self.upstreamBase = upstreamBase
    }

    /// Builds the repository and returns the demo API key of each client id.
    mutating func build() throws -> [String: String] {
        let files = try WorktreeReader.read(root: example)
        let marketplace = MarketplaceValidator().validate(files).marketplace
        guard let admin = marketplace.platform?.admins.first?.email else {
            throw CLIFailure("the example in \(example) has no policies/platform.yaml with an admin")
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try git(["init", "-q", "-b", "main"], as: admin)

        for name in ["platform.yaml", "plans.yaml", "consent-providers.yaml", "alerts.yaml"] {
            var text = try read("policies/" + name)
            if name == "platform.yaml" { text = demoPlatform(text) }
            if name == "consent-providers.yaml" { text = demoConsentProviders(text) }
            try write("policies/" + name, text)
        }
        try commit("Set up the marketplace: platform, plans, consent providers and alerts", as: admin)

        for publisher in marketplace.publishers.values.sorted(by: { $0.name < $1.name }) {
            let member = publisher.members.first?.email ?? admin
            let folder = "catalog/\(publisher.name)/"
            try git(["switch", "-q", "-c", "register-\(publisher.name)"], as: member)
            try write(folder + "publisher.yaml", try read(folder + "publisher.yaml"))
            try commit("Register \(publisher.displayName)", as: member)
            try merge("register-\(publisher.name)", "Admit publisher \(publisher.name)", as: admin)
            for api in marketplace.apis.values.filter({ $0.publisher == publisher.name }).sorted(by: { $0.name < $1.name }) {
                try write(folder + api.name + ".yaml", demoAPI(try read(folder + api.name + ".yaml")))
                if let openapi = api.openapiPath { try write(openapi, try read(openapi)) }
                try commit("List \(api.title)", as: member)
            }
        }

        var keys: [String: String] = [:]
        for consumer in marketplace.consumers.values.sorted(by: { $0.name < $1.name }) {
            let member = consumer.members.first?.email ?? admin
            let file = "subscriptions/\(consumer.name)/consumer.yaml"
            try git(["switch", "-q", "-c", "register-\(consumer.name)"], as: member)
            try write(file, demoCredentials(try read(file), keys: &keys))
            try commit("Register \(consumer.displayName)", as: member)
            try merge("register-\(consumer.name)", "Admit consumer \(consumer.name)", as: admin)
        }

        for subscription in marketplace.subscriptions.values.sorted(by: { $0.id < $1.id }) {
            let file = subscription.origin.file
            let member = marketplace.consumers[subscription.consumer]?.members.first?.email ?? admin
            let publisher = String(subscription.api.split(separator: "/").first ?? "")
            if file == Self.pendingSubscription {
                try write(file, try read(file))
                try commit("Subscribe to \(subscription.api)", as: member)
                continue
            }
            let approver = marketplace.publishers[publisher]?.approvers.first?.email ?? admin
            let branch = "\(subscription.consumer)/\(subscription.name)"
            try git(["switch", "-q", "-c", branch], as: member)
            try write(file, try read(file))
            try commit("Subscribe to \(subscription.api)", as: member)
            try merge(branch, "Approve \(subscription.consumer)'s subscription to \(subscription.api)", as: approver)
        }
        return keys
    }

    // MARK: The example, adjusted for loopback upstreams and fresh keys

    /// Lets the platform call the demo's plain-HTTP loopback upstreams.
    private func demoPlatform(_ text: String) -> String {
        text.replacingOccurrences(
            of: "  upstreams:\n    allow:\n", with: "  upstreams:\n    allowHTTP: true\n    allowLoopback: true\n    allow:\n      - 127.0.0.1\n")
    }

    /// Has MeriPehchaan also take the keys the sample consent provider publishes.
    private func demoConsentProviders(_ text: String) -> String {
        text.replacingOccurrences(
            of: "  algorithms: [EdDSA]\n",
            with: "  algorithms: [EdDSA]\n  jwksURI: \(upstreamBase)\(DemoConsentProvider.prefix)jwks.json\n  jwksRefresh: 1m\n")
    }

    /// Points an API's upstream at the sample upstreams: `https://api.cbse.example/v3`
    /// becomes `<upstreamBase>/api.cbse.example/v3`.
    private func demoAPI(_ text: String) -> String {
        var inUpstream = false
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("  upstream:") { inUpstream = true; return String(line) }
            if inUpstream, let range = line.range(of: "url: https://") {
                inUpstream = false
                return line[..<range.lowerBound] + "url: " + upstreamBase + "/" + line[range.upperBound...]
            }
            if !line.hasPrefix("    ") { inUpstream = false }
            return String(line)
        }.joined(separator: "\n")
    }

    /// Gives every credential a new key, returned by client id; only its hash is committed.
    private func demoCredentials(_ text: String, keys: inout [String: String]) -> String {
        var clientId: String?
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("- clientId:") {
                clientId = trimmed.dropFirst("- clientId:".count).trimmingCharacters(in: .whitespaces)
            } else if trimmed.hasPrefix("keySHA256:"), let id = clientId {
                let key = KeygenCommand.newKey()
                keys[id] = key
                let indent = line.prefix { $0 == " " }
                return indent + "keySHA256: " + KeygenCommand.sha256Hex(key)
            }
            return String(line)
        }.joined(separator: "\n")
    }

    // MARK: Files and git

    private func read(_ relative: String) throws -> String {
        do {
            return try String(contentsOfFile: example + "/" + relative, encoding: .utf8)
        } catch {
            throw CLIFailure("cannot read the example's \(relative) in \(example): \(error.localizedDescription)")
        }
    }

    private func write(_ relative: String, _ text: String) throws {
        let url = URL(fileURLWithPath: path + "/" + relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    private mutating func commit(_ message: String, as email: String) throws {
        try git(["add", "-A"], as: email)
        try git(["commit", "-q", "-m", message], as: email)
    }

    private mutating func merge(_ branch: String, _ message: String, as email: String) throws {
        try git(["switch", "-q", "main"], as: email)
        try git(["merge", "-q", "--no-ff", "-m", message, branch], as: email)
    }

    @discardableResult
    private mutating func git(_ arguments: [String], as email: String) throws -> String {
        clock += 3600
        let name = String(email.split(separator: "@").first ?? "")
        let identity = [
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email, "GIT_AUTHOR_DATE": "@\(clock) +0530",
            "GIT_COMMITTER_DATE": "@\(clock) +0530", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        ]
        do {
            return try GitProcess.run(in: path, arguments, environment: identity)
        } catch .cannotRun(let reason) {
            throw CLIFailure("cannot run git, which the demo uses to build its repository: \(reason); install git")
        } catch .failed(let said) {
            throw CLIFailure("git \(arguments.joined(separator: " ")) failed in \(path): \(said)")
        }
    }
}
