import Foundation
import SetuGit
import SetuManifest
import SetuSources
import SetuTestSupport
import SetuTrust
import Testing

/// Validates the example marketplace after one change, committed to a real git
/// repository, and returns every diagnostic as `setu validate` prints its first line.
func headlines(after change: (GitFixture) throws -> Void) throws -> [String] {
    let fixture = try GitFixture()
    try fixture.copyExampleMarketplace()
    try change(fixture)
    try fixture.commitAll("change")
    return try validate(fixture).diagnostics.map(DiagnosticFormatter.headline)
}

func validate(_ fixture: GitFixture, revision: String = "HEAD") throws -> ValidationReport {
    let repository = try Repository(path: fixture.path)
    let commit = try repository.resolveCommit(revision)
    return MarketplaceValidator().validate(try GitMarketplaceReader.files(in: repository, at: commit, limits: .standard))
}

struct BadInputTests {
    @Test func exampleMarketplaceIsValidAtHead() throws {
        #expect(try headlines { _ in } == [])
    }

    @Test func yamlSyntaxError() throws {
        let found = try headlines { try $0.edit("subscriptions/acme-bank/pan-verification.yaml", replacing: "plan: premium", with: "plan: [premium") }
        #expect(
            found == [
                "subscriptions/acme-bank/pan-verification.yaml:9:10: error[yaml.syntax]: did not find expected ',' or ']' (while parsing a flow sequence at 8:9)"
            ])
    }

    @Test func wrongType() throws {
        let found = try headlines { try $0.edit("catalog/cbse/class-xii-marksheet.yaml", replacing: "url: https://api.cbse.example/v3", with: "url: 42") }
        #expect(
            found == [
                "catalog/cbse/class-xii-marksheet.yaml:13:5: error[schema.type]: /spec/upstream/url must be a string, not an integer"
            ])
    }

    @Test func missingAndUnknownFields() throws {
        let found = try headlines {
            try $0.edit("catalog/transport/driving-licence.yaml", replacing: "  title: Driving Licence", with: "  titel: Driving Licence")
        }
        #expect(
            found == [
                "catalog/transport/driving-licence.yaml:6:1: error[schema.required]: /spec is missing required field 'title'",
                "catalog/transport/driving-licence.yaml:7:3: error[schema.unknown-field]: /spec/titel is not a known field (did you mean 'title'?)",
            ])
    }

    @Test func nameDisagreesWithPath() throws {
        let found = try headlines { try $0.edit("subscriptions/swift-loans/driving-licence.yaml", replacing: "name: driving-licence", with: "name: licence") }
        #expect(
            found == [
                "subscriptions/swift-loans/driving-licence.yaml:5:3: error[name.path]: /metadata/name is 'licence', but the file is named 'driving-licence.yaml'"
            ])
    }

    @Test func duplicateId() throws {
        let found = try headlines { fixture in
            let plans = try fixture.read("policies/plans.yaml")
            try fixture.write("policies/more-plans.yaml", String(plans.prefix(upTo: plans.range(of: "---")!.lowerBound)))
        }
        #expect(
            found == [
                "policies/plans.yaml:5:3: error[name.unique]: /metadata/name Plan standard is already defined in policies/more-plans.yaml"
            ])
    }

    @Test func danglingReference() throws {
        let found = try headlines {
            try $0.edit("subscriptions/acme-bank/pan-verification.yaml", replacing: "api: incometax/pan-verification", with: "api: incometax/pan-verify")
        }
        #expect(
            found == [
                "subscriptions/acme-bank/pan-verification.yaml:7:3: error[ref.api]: /spec/api names API 'incometax/pan-verify', which the catalog does not list"
            ])
    }

    @Test func overlappingBasePaths() throws {
        let found = try headlines {
            try $0.edit("catalog/incometax/pan-verification.yaml", replacing: "basePath: /pan/v3", with: "basePath: /cbse/v3/class-x/pan")
        }
        #expect(
            found == [
                "catalog/incometax/pan-verification.yaml:11:3: error[api.base-path]: /spec/basePath '/cbse/v3/class-x/pan' lies under the base path '/cbse/v3/class-x' of cbse/class-x-certificates (catalog/cbse/class-x-certificates.yaml)"
            ])
    }

    @Test func subscriptionToListingAPI() throws {
        let found = try headlines { fixture in
            try fixture.write(
                "subscriptions/acme-bank/rainfall.yaml",
                """
                apiVersion: setu/v1
                kind: Subscription
                metadata: {name: rainfall}
                spec:
                  api: datagov/rainfall-statistics
                  plan: standard

                """)
        }
        #expect(
            found == [
                "subscriptions/acme-bank/rainfall.yaml:5:3: error[subscription.listing]: /spec/api names datagov/rainfall-statistics, a listing API: listing APIs are for information only and cannot be subscribed to"
            ])
    }

    @Test func rawKeyInsteadOfHash() throws {
        let found = try headlines {
            try $0.edit(
                "subscriptions/swift-loans/consumer.yaml", replacing: "keySHA256: f22e409e26e03e6a0668fad1376b3e5a04597272a3b7f744625fed687a7a3771",
                with: "keySHA256: setu_Zm9vYmFyYmF6")
        }
        #expect(
            found == [
                "subscriptions/swift-loans/consumer.yaml:14:7: error[credential.hash]: /spec/credentials/0/keySHA256 must be the lowercase hex SHA-256 of the API key, never the key itself"
            ])
    }

    @Test func blockScalarKeepsItsLineBreakAndFailsThePattern() throws {
        // `|` keeps the final line break: "2027-12-31\n" is not a date, as ECMA-262 reads `$`.
        let found = try headlines {
            try $0.edit("subscriptions/acme-bank/cbse-class-xii-marksheet.yaml", replacing: "notAfter: 2027-12-31", with: "notAfter: |\n    2027-12-31")
        }
        #expect(
            found == [
                "subscriptions/acme-bank/cbse-class-xii-marksheet.yaml:11:3: error[schema.pattern]: /spec/notAfter must be a date written YYYY-MM-DD"
            ])
    }

    @Test func dateOfADayThatDoesNotExist() throws {
        let found = try headlines { fixture in
            try fixture.edit("subscriptions/acme-bank/cbse-class-xii-marksheet.yaml", replacing: "notAfter: 2027-12-31", with: "notAfter: 2027-02-29")
            try fixture.edit("subscriptions/swift-loans/consumer.yaml", replacing: "notAfter: ", with: "notAfter: 2026-04-31 #")
        }
        #expect(
            found == [
                "subscriptions/acme-bank/cbse-class-xii-marksheet.yaml:11:3: error[date.calendar]: /spec/notAfter 2027-02-29 is not a day: February 2027 has 28 days",
                "subscriptions/swift-loans/consumer.yaml:15:7: error[date.calendar]: /spec/credentials/0/notAfter 2026-04-31 is not a day: April 2026 has 30 days",
            ])
    }

    @Test func openAPIPathEscapingTheRepository() throws {
        let found = try headlines {
            try $0.edit(
                "catalog/transport/driving-licence.yaml", replacing: "openapi: driving-licence.openapi.yaml", with: "openapi: ../../../etc/passwd.openapi.yaml")
        }
        #expect(
            found == [
                "catalog/transport/driving-licence.openapi.yaml:1:1: warning[openapi.unreferenced]: no API manifest refers to this OpenAPI document",
                "catalog/transport/driving-licence.yaml:15:3: error[openapi.path]: /spec/openapi '../../../etc/passwd.openapi.yaml' leads outside catalog/transport/; an OpenAPI document must stay inside its publisher's folder",
            ])
    }

    @Test func symlink() throws {
        let found = try headlines { fixture in
            try FileManager.default.createSymbolicLink(atPath: fixture.path + "/catalog/cbse/linked.yaml", withDestinationPath: "/etc/passwd")
        }
        #expect(
            found == [
                "catalog/cbse/linked.yaml:1:1: error[file.symlink]: symbolic links are not allowed in a marketplace"
            ])
    }

    @Test func submodule() throws {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        try fixture.commitAll("example")
        // A gitlink entry is what `git submodule add` records; no work tree is needed for it.
        try fixture.git("update-index", "--add", "--cacheinfo", "160000,\(String(repeating: "a", count: 40)),catalog/vendored")
        try fixture.git("commit", "-q", "-m", "vendor a submodule")
        let found = try validate(fixture).diagnostics.map(DiagnosticFormatter.headline)
        #expect(
            found == [
                "catalog/vendored:1:1: error[file.submodule]: submodules are not allowed in a marketplace"
            ])
    }

    @Test func oversizedFile() throws {
        let found = try headlines { fixture in
            try fixture.write("catalog/cbse/huge.yaml", "# " + String(repeating: "x", count: 1 << 20) + "\n")
        }
        #expect(
            found == [
                "catalog/cbse/huge.yaml:1:1: error[file.too-large]: file is 1048579 bytes, over the limit of 1048576 bytes; it was not read"
            ])
    }

    @Test func billionLaughs() throws {
        var lines = ["lol0: &l0 \"lol\""]
        for level in 1...9 {
            lines.append("lol\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", ") + "]")
        }
        let found = try headlines { try $0.write("subscriptions/acme-bank/laughs.yaml", lines.joined(separator: "\n") + "\n") }
        #expect(
            found == [
                "subscriptions/acme-bank/laughs.yaml:1:7: error[yaml.aliases]: the file expands to more than 200000 values once aliases are followed"
            ])
    }

    @Test func deepNesting() throws {
        let found = try headlines { fixture in
            try fixture.write(
                "subscriptions/acme-bank/deep.yaml", "spec: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n")
            try fixture.write(
                "subscriptions/acme-bank/deep-block.yaml", (0..<100).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x\n")
        }
        #expect(
            found == [
                "subscriptions/acme-bank/deep-block.yaml:66:66: error[yaml.depth]: values nest deeper than 64 levels",
                "subscriptions/acme-bank/deep.yaml:1:8: error[yaml.depth]: values nest too deeply for the YAML parser",
            ])
    }

    @Test func invalidUTF8() throws {
        let found = try headlines { fixture in
            var bytes = Array(try fixture.read("subscriptions/acme-bank/pan-verification.yaml").utf8)
            let offset = bytes.firstIndex(of: UInt8(ascii: "K"))!
            bytes[offset] = 0xC3
            try fixture.write("subscriptions/acme-bank/pan-verification.yaml", bytes: bytes)
        }
        #expect(
            found == [
                "subscriptions/acme-bank/pan-verification.yaml:9:12: error[yaml.utf8]: invalid UTF-8 byte 0xC3"
            ])
    }

    @Test func emptyRepository() throws {
        let fixture = try GitFixture()
        let repository = try Repository(path: fixture.path)
        #expect(throws: GitError.self) { try repository.resolveCommit("HEAD") }
        do {
            _ = try repository.resolveCommit("HEAD")
        } catch let error as GitError {
            #expect(error.code == .emptyRepository)
            #expect(
                error.message
                    == "the repository at '\(fixture.path)' has no commits yet; commit the marketplace first, or use --worktree to validate uncommitted files")
        }
    }

    @Test func revisionThatDoesNotExist() throws {
        let fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        try fixture.commitAll("example")
        do {
            _ = try validate(fixture, revision: "no-such-branch")
            Issue.record("resolving a missing revision succeeded")
        } catch let error as GitError {
            #expect(error.code == .revisionNotFound)
            #expect(
                error.message
                    == "revision 'no-such-branch' does not exist in '\(fixture.path)': revspec 'no-such-branch' not found; name a branch, tag or commit that exists (git log --oneline shows them)"
            )
        }
    }
}
