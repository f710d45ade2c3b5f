import Foundation
import SetuManifest
import SetuSources
import SetuTestSupport
import Testing

/// `setu` run as a user runs it, on real repositories.
struct CommandLineTests {
    func example() throws -> GitFixture {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        try fixture.commitAll("Example marketplace")
        return fixture
    }

    @Test func validateCleanMarketplaceExitsZero() throws {
        let fixture = try example()
        let result = try setu("validate", "--repo", fixture.path)
        let head = String(try fixture.git("rev-parse", "HEAD").prefix(7))
        #expect(result.status == 0)
        #expect(result.stdout == "ok: 29 manifests in 24 files at HEAD (\(head)) valid\n")
    }

    @Test func theProjectsOwnExampleIsValidInItsWorkTree() throws {
        let result = try setu("validate", "--repo", projectRoot.path, "--worktree")
        #expect(result.status == 0)
        #expect(result.stdout == "ok: 29 manifests in 24 files at work tree valid\n")
    }

    @Test func invalidMarketplaceShowsLineCaretAndFixAndExitsOne() throws {
        let fixture = try example()
        try fixture.edit("subscriptions/acme-bank/pan-verification.yaml", replacing: "plan: premium", with: "plan: gold")
        try fixture.commitAll("gold plan")
        let result = try setu("validate", "--repo", fixture.path, "--rev", "main")
        #expect(result.status == 1)
        #expect(
            result.stdout.hasPrefix(
                """
                subscriptions/acme-bank/pan-verification.yaml:8:3: error[ref.plan]: /spec/plan 'gold' is not a plan incometax/pan-verification offers
                 8 |   plan: gold
                   |   ^
                  fix: use one of: standard, premium, sandbox
                invalid: 1 error in 1 file; checked 29 manifests in 24 files at main
                """))
    }

    @Test func typeErrorsSuggestQuoting() throws {
        let fixture = try example()
        try fixture.edit("catalog/cbse/class-xii-marksheet.yaml", replacing: "version: 3.0.0", with: "version: 3")
        try fixture.commitAll("numeric version")
        let result = try setu("validate", "--repo", fixture.path)
        #expect(
            result.stdout.hasPrefix(
                """
                catalog/cbse/class-xii-marksheet.yaml:9:3: error[schema.type]: /spec/version must be a string, not an integer
                 9 |   version: 3
                   |   ^
                  fix: quote the value so YAML reads it as a string, e.g. "3"

                """))
    }

    @Test func jsonAndGitHubFormats() throws {
        let fixture = try example()
        try fixture.edit("catalog/cbse/publisher.yaml", replacing: "type: document", with: "type: documents")
        try fixture.commitAll("typo")
        let json = try setu("validate", "--repo", fixture.path, "--format", "json")
        #expect(json.status == 1)
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect(report["valid"] as? Bool == false)
        let items = report["diagnostics"] as! [[String: Any]]
        #expect(items.count == 1)
        #expect(items[0]["rule"] as? String == "schema.enum")
        #expect(items[0]["line"] as? Int == 8)
        #expect(items[0]["column"] as? Int == 3)
        #expect(items[0]["pointer"] as? String == "/spec/type")
        #expect(items[0]["message"] as? String == "/spec/type must be one of: 'document', 'service', 'listing' (found 'documents')")

        let github = try setu("validate", "--repo", fixture.path, "--format", "github")
        #expect(github.status == 1)
        #expect(
            github.stdout.hasPrefix(
                "::error file=catalog/cbse/publisher.yaml,line=8,col=3,title=schema.enum::/spec/type must be one of: 'document', 'service', 'listing' (found 'documents')\n"
            ))
    }

    @Test func worktreeValidatesUncommittedFiles() throws {
        let fixture = try example()
        try fixture.write(
            "subscriptions/acme-bank/new.yaml", "apiVersion: setu/v1\nkind: Subscription\nmetadata: {name: new}\nspec: {api: cbse/class-xii-marksheet}\n")
        let worktree = try setu("validate", "--repo", fixture.path, "--worktree")
        #expect(worktree.status == 1)
        #expect(worktree.stdout.hasPrefix("subscriptions/acme-bank/new.yaml:4:1: error[schema.required]: /spec is missing required field 'plan'\n"))
        #expect(try setu("validate", "--repo", fixture.path).status == 0)
    }

    @Test func olderRevisions() throws {
        let fixture = try example()
        try fixture.remove("catalog/datagov/publisher.yaml")
        try fixture.commitAll("drop a publisher")
        let head = try setu("validate", "--repo", fixture.path)
        #expect(head.status == 1)
        #expect(head.stdout.contains("error[ref.publisher]: the document API datagov/mandi-prices has no publisher"))
        #expect(try setu("validate", "--repo", fixture.path, "--rev", "HEAD~1").status == 0)
    }

    @Test func usageAndIOErrorsExitTwo() throws {
        let fixture = try example()
        let both = try setu("validate", "--repo", fixture.path, "--rev", "main", "--worktree")
        #expect(both.status == 2)
        #expect(both.stderr.contains("--rev and --worktree exclude each other"))
        let unknown = try setu("validate", "--bogus")
        #expect(unknown.status == 2)
        let missing = try setu("validate", "--repo", fixture.path + "/nope")
        #expect(missing.status == 2)
        #expect(missing.stderr.hasPrefix("error: no git repository at '\(fixture.path)/nope'"))
        let revision = try setu("validate", "--repo", fixture.path, "--rev", "v9")
        #expect(revision.status == 2)
        #expect(revision.stderr.hasPrefix("error: revision 'v9' does not exist"))
        let empty = try GitFixture()
        let none = try setu("validate", "--repo", empty.path)
        #expect(none.status == 2)
        #expect(
            none.stderr
                == "error: the repository at '\(empty.path)' has no commits yet; commit the marketplace first, or use --worktree to validate uncommitted files\n"
        )
    }

    @Test func everyCommandExplainsItselfWithAnExample() throws {
        for command in ["validate", "catalog", "schema", "keygen", "init", "import-openapi"] {
            let help = try setu(command, "--help")
            #expect(help.status == 0, "\(command)")
            #expect(help.stdout.contains("Example") || help.stdout.contains("example"), "\(command)")
        }
        let showHelp = try setu("catalog", "show", "--help")
        #expect(showHelp.stdout.contains("setu catalog show cbse/class-xii-marksheet"))
    }

    @Test func schemasExportAndEveryModelineNamesTheRightOne() throws {
        let fixture = try example()
        let export = try setu("schema", "--out", fixture.path + "/schemas")
        #expect(export.status == 0)
        let exported = try FileManager.default.contentsOfDirectory(atPath: fixture.path + "/schemas").sorted()
        #expect(exported == ManifestSchemas.files.keys.sorted())
        let files = try WorktreeReader.read(root: fixture.path)
        var checked = 0
        for file in files where file.path.hasSuffix(".yaml") && !file.path.hasSuffix(".openapi.yaml") {
            guard case .bytes(let bytes) = file.content else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            let documents = try YAMLLoader.load(bytes, file: file.path).get()
            let modelines = text.split(separator: "\n").filter { $0.hasPrefix("# yaml-language-server: $schema=") }
            #expect(modelines.count == documents.count, "\(file.path)")
            for (line, document) in zip(modelines, documents) {
                let relative = line.dropFirst("# yaml-language-server: $schema=".count)
                let folder = URL(fileURLWithPath: fixture.path + "/" + file.path).deletingLastPathComponent()
                let target = folder.appendingPathComponent(String(relative)).standardized
                let kind = try #require(ManifestKind(rawValue: document.value["kind"]?.stringValue ?? ""))
                #expect(target.path == fixture.path + "/schemas/" + kind.schemaFile, "\(file.path)")
                #expect(FileManager.default.fileExists(atPath: target.path))
                checked += 1
            }
        }
        #expect(checked == 29)
        let api = try setu("schema", "API")
        #expect(api.stdout.contains("\"title\": \"Setu API\""))
    }

    @Test func keygenPrintsAKeyAndItsHash() throws {
        let result = try setu("keygen", "--client-id", "acme-bank-test", "--not-after", "2027-01-31")
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let key = try #require(lines.first { $0.hasPrefix("setu_") })
        #expect(key.count == 48)
        let hashLine = try #require(lines.first { $0.hasPrefix("keySHA256: ") })
        let digest = try run("/usr/bin/sha256sum", [], input: Data(key.utf8)).stdout.prefix(64)
        #expect(hashLine == "keySHA256: \(digest)")
        #expect(lines.contains("- clientId: acme-bank-test"))
        #expect(lines.contains("notAfter: 2027-01-31"))
        #expect(try setu("keygen").stdout != result.stdout)
        let bad = try setu("keygen", "--not-after", "31-01-2027")
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--not-after must be a date written YYYY-MM-DD"))
        let noDay = try setu("keygen", "--not-after", "2027-02-29")
        #expect(noDay.status == 2)
        #expect(noDay.stderr.contains("--not-after 2027-02-29 is not a day: February 2027 has 28 days"))
    }

    @Test func keysAreRotatedUnderOneClientIdAndPastKeysAreWarnedOf() throws {
        let rotate = try setu("keygen", "--rotate", "--client-id", "acme-bank-prod", "--not-after", "2028-06-30")
        #expect(rotate.status == 0)
        #expect(rotate.stdout.contains("New credential for client id acme-bank-prod"))
        let lines = rotate.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let snippet = rotate.stdout[rotate.stdout.range(of: "    - clientId: acme-bank-prod\n")!.lowerBound...]
        #expect(lines.contains("notAfter: 2028-06-30"))
        let withoutId = try setu("keygen", "--rotate")
        #expect(withoutId.status == 2)
        #expect(withoutId.stderr.contains("--rotate needs --client-id"))

        let fixture = try example()
        try fixture.edit("subscriptions/acme-bank/consumer.yaml", replacing: "  credentials:\n", with: "  credentials:\n" + snippet)
        try fixture.edit("subscriptions/acme-bank/consumer.yaml", replacing: "notAfter: 2027-12-31", with: "notAfter: 2020-01-31")
        try fixture.commitAll("Rotate acme-bank-prod's key; the staging key has expired")
        let result = try setu("validate", "--repo", fixture.path)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(!result.stdout.contains("credential.client-id"))
        #expect(result.stdout.contains("warning[credential.expired]"))
        #expect(result.stdout.contains("the key of client id 'acme-bank-staging' expired on 2020-01-31"))

        try fixture.edit("subscriptions/swift-loans/consumer.yaml", replacing: "clientId: swift-loans-prod", with: "clientId: acme-bank-prod")
        try fixture.commitAll("Another consumer takes acme-bank-prod")
        let taken = try setu("validate", "--repo", fixture.path)
        #expect(taken.status == 1)
        #expect(
            taken.stdout.contains("error[credential.client-id]: /spec/credentials/0/clientId client id 'acme-bank-prod' is already used by consumer acme-bank"))
    }

    @Test func initCreatesAValidMarketplaceWithAFirstCommit() throws {
        let folder = TemporaryDirectory()
        let result = try setu("init", folder.child("market"), "--admin", "admin@state.example", "--display-name", "State API Marketplace")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("created \(folder.child("market")) with a first commit"))
        let validate = try setu("validate", "--repo", folder.child("market"))
        #expect(validate.status == 0)
        #expect(validate.stdout.hasPrefix("ok: 3 manifests in 2 files at HEAD"))
        let log = try run("/usr/bin/git", ["-C", folder.child("market"), "log", "--format=%s"])
        #expect(log.stdout == "Create the State API Marketplace\n")
        let platform = try String(contentsOfFile: folder.child("market/policies/platform.yaml"), encoding: .utf8)
        #expect(platform.contains("    - email: admin@state.example\n"))
        let badName = try setu("init", folder.child("other"), "--name", "My_Market")
        #expect(badName.status == 2)
        #expect(badName.stderr.contains("--name must be 1-63 lowercase letters, digits or '-'"))
        let again = try setu("init", folder.child("market"), "--admin", "a@b.example")
        #expect(again.status == 2)
        #expect(again.stderr == "error: '\(folder.child("market"))' already exists and is not empty; choose a new folder\n")
    }

    @Test func catalogListsSearchesAndShows() throws {
        let fixture = try example()
        let all = try setu("catalog", "--repo", fixture.path)
        #expect(all.status == 0)
        #expect(all.stdout.contains("7 APIs"))
        let search = try setu("catalog", "--repo", fixture.path, "--search", "MARKSHEET")
        #expect(
            search.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
                == ["API", "cbse/class-x-certificates", "cbse/class-xii-marksheet", "2"])
        let listings = try setu("catalog", "--repo", fixture.path, "--type", "listing", "--format", "json")
        let entries = try JSONSerialization.jsonObject(with: Data(listings.stdout.utf8)) as! [[String: Any]]
        #expect(entries.map { $0["id"] as! String } == ["datagov/mandi-prices", "datagov/rainfall-statistics"])
        let show = try setu("catalog", "show", "transport/vehicle-registration", "--repo", fixture.path)
        #expect(show.status == 0)
        #expect(show.stdout.contains("POST  /transport/v3/vehicle/rvcer/certificate   rvcer   Registration of Vehicles"))
        #expect(show.stdout.contains("ask an approver of transport (jointsecretary@parivahan.example) to merge it"))
        #expect(show.stdout.contains("  api: transport/vehicle-registration\n  plan: standard\n  purpose: "))
        let listing = try setu("catalog", "show", "datagov/mandi-prices", "--repo", fixture.path)
        #expect(listing.stdout.contains("listed for information only"))
        let missing = try setu("catalog", "show", "cbse/marksheet", "--repo", fixture.path)
        #expect(missing.status == 2)
        #expect(missing.stderr == "error: no API 'cbse/marksheet' in the catalog; `setu catalog` lists them\n")
    }

    @Test func importTakesTitleSummaryAndTagsFromTheDocumentsInfoAndTags() throws {
        let cbse = projectRoot.appendingPathComponent("Tests/Fixtures/apisetu/cbse.openapi.yaml").path
        let imported = try setu("import-openapi", cbse, "--publisher", "cbse")
        #expect(imported.status == 0)
        #expect(imported.stdout.contains("  title: Central Board of Secondary Education\n"))
        #expect(
            imported.stdout.contains("  summary: CBSE (http://www.cbse.nic.in/) is issuing marksheets, passing certificates, migration certificates etc.\n"))
        // API Setu marks every operation `APIs`; the document's own category is what describes it.
        #expect(imported.stdout.contains("  tags: [open-data]\n"))
        let chosen = try setu(
            "import-openapi", cbse, "--publisher", "cbse", "--title", "CBSE certificates",
            "--summary", "Marksheets and certificates.", "--tag", "Education", "--tag", "class-xii")
        #expect(chosen.stdout.contains("  title: CBSE certificates\n  summary: Marksheets and certificates.\n"))
        #expect(chosen.stdout.contains("  tags: [class-xii, education]\n"))
    }

    @Test("import-openapi turns each real API Setu document into a manifest that validates")
    func importRealDocuments() throws {
        let specs = sharedFolder.appendingPathComponent("apisetu-specs").path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: specs) else { return }
        let folder = TemporaryDirectory()
        let market = folder.child("market")
        #expect(try setu("init", market, "--admin", "admin@setu.example").status == 0)
        let platform = try String(contentsOfFile: market + "/policies/platform.yaml", encoding: .utf8)
            .replacingOccurrences(of: "    # allow: [api.example.gov.in, \"*.example.gov.in\"]", with: "    allow: [apisetu.gov.in, issuer.example]")
        try Data(platform.utf8).write(to: URL(fileURLWithPath: market + "/policies/platform.yaml"))
        try Data(
            """
            apiVersion: setu/v1
            kind: Publisher
            metadata: {name: apisetu}
            spec:
              displayName: API Setu
              type: service
              contact: {email: apisetu@setu.example}
              members: [{email: dev@setu.example}]
              approvers: [{email: approver@setu.example}]

            """.utf8
        ).write(to: URL(fileURLWithPath: market + "/catalog/apisetu/publisher.yaml").createFolder())
        var imported = 0
        for name in names.sorted() where name.hasSuffix(".openapi.yaml") {
            var arguments = ["import-openapi", specs + "/" + name, "--publisher", "apisetu", "--into", market, "--plan", "standard"]
            if name == "issuer.openapi.yaml" { arguments += ["--upstream", "https://issuer.example/pull"] }
            let result = try run(setuExecutable(), arguments)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            imported += 1
        }
        let validate = try setu("validate", "--repo", market, "--worktree")
        #expect(validate.status == 0, "\(validate.stdout)")
        #expect(validate.stdout == "ok: \(imported + 4) manifests in \(imported + 3) files at work tree valid\n")
        let show = try setu("catalog", "show", "apisetu/pan", "--repo", market, "--worktree")
        #expect(show.stdout.contains("POST  /apisetu/pan/pancr/certificate  pancr  PAN Verification Record"))

        let noServer = try setu("import-openapi", specs + "/issuer.openapi.yaml", "--publisher", "apisetu")
        #expect(noServer.status == 2)
        #expect(noServer.stderr == "error: \(specs)/issuer.openapi.yaml names no server URL to use as the upstream; pass --upstream https://…\n")
    }
}

extension URL {
    /// Creates this file's folder and returns the file's URL.
    func createFolder() throws -> URL {
        try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
        return self
    }
}
