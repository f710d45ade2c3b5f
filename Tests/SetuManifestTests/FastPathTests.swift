import Foundation
import SetuSources
import SetuStorage
import SetuTestSupport
import Testing

@testable import SetuManifest

/// The event reader is the fast way through `YAMLLoader`; the parse-tree reader is
/// the full way. Wherever the fast way answers, both must agree.
struct YAMLEventTests {
    static var realFiles: [String] {
        var files: [String] = []
        for root in ["catalog", "subscriptions", "policies"] {
            let folder = projectRoot.path + "/" + root
            for case let file as String in FileManager.default.enumerator(atPath: folder)! where file.hasSuffix(".yaml") {
                files.append(folder + "/" + file)
            }
        }
        for name in apisetuSpecs {
            files.append(sharedFolder.appendingPathComponent("apisetu-specs/\(name)").path)
        }
        return files.sorted()
    }

    @Test(arguments: realFiles)
    func eventsAgreeWithParseTrees(path: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
        let fast = try #require(YAMLEvents.load(bytes, limits: .standard), "the fast way declined \(path)")
        let full = try YAMLLoader.loadParseTrees(bytes, file: path, limits: .standard).get()
        #expect(fast.map(\.value) == full.map(\.value))
        #expect(fast.map(\.start) == full.map(\.start))
    }

    @Test func locationsOfFastDocumentsComeFromTheFullParse() throws {
        let text = "apiVersion: setu/v1\nkind: Plan\nmetadata:\n  name: gold\nspec:\n  rateLimit: {requests: 5, per: second}\n"
        let document = try #require(try YAMLLoader.load(Array(text.utf8), file: "p.yaml").get().first)
        #expect(document.location(of: JSONPointer(["spec", "rateLimit", "per"])) == SourceLocation(line: 6, column: 28))
        #expect(document.location(of: JSONPointer(["metadata", "name"])) == SourceLocation(line: 4, column: 3))
    }

    @Test(arguments: [
        ("anchors and aliases", "a: &x 1\nb: *x\n"),
        ("a tag", "a: !!str 1\n"),
        ("a repeated key", "a: 1\na: 2\n"),
        ("a key that is a mapping", "? {a: 1}\n: 2\n"),
        ("a syntax error", "a: [1, 2\n"),
        ("nesting past the limit", String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "\n"),
    ])
    func unusualInputTakesTheFullWay(what: String, text: String) {
        #expect(YAMLEvents.load(Array(text.utf8), limits: .standard) == nil, "\(what)")
    }

    @Test func fullWayStillExplainsWhatTheFastWayDeclines() {
        guard case .failure(let duplicate) = YAMLLoader.load(Array("a: 1\na: 2\n".utf8), file: "d.yaml") else {
            Issue.record("a repeated key loaded")
            return
        }
        #expect(duplicate.rule == "yaml.duplicate-key")
        #expect(duplicate.message == "the mapping has the key 'a' more than once")
    }
}

struct ByteCodingTests {
    @Test func valuesAndDiagnosticsSurviveARoundTrip() throws {
        let value = JSONValue.object([
            "s": .string("पैन — PAN"), "n": .number(-2.5), "i": .number(1_099_511_627_776), "t": .bool(true), "f": .bool(false), "z": .null,
            "a": .array([.number(0), .object([:]), .array([])]),
        ])
        let diagnostic = Diagnostic(
            .warning, file: "catalog/x/y.yaml", location: SourceLocation(line: 3, column: 7),
            pointer: JSONPointer(["spec", "a/b"]), rule: "ref.plan", message: "names plan 'gold'", fix: nil)
        var writer = ByteWriter()
        value.write(to: &writer)
        diagnostic.write(to: &writer)
        var reader = ByteReader(writer.bytes)
        #expect(try JSONValue(from: &reader) == value)
        #expect(try Diagnostic(from: &reader) == diagnostic)
        #expect(reader.isAtEnd)
    }

    @Test func truncatedOrForeignBytesAreRefused() {
        var writer = ByteWriter()
        JSONValue.object(["key": .string("a long enough value")]).write(to: &writer)
        for length in 0..<writer.bytes.count {
            var reader = ByteReader(Array(writer.bytes.prefix(length)))
            #expect(throws: ByteReader.Truncated.self) { try JSONValue(from: &reader) }
        }
        var foreign = ByteReader([0x09, 0x01])
        #expect(throws: ByteReader.Truncated.self) { try JSONValue(from: &foreign) }
        var huge = ByteReader([0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(throws: ByteReader.Truncated.self) { try JSONValue(from: &huge) }
    }
}

struct PreparedFileTests {
    func exampleFiles() throws -> [SourceFile] {
        try WorktreeReader.read(root: projectRoot.path)
    }

    @Test func validatingPreparedFilesGivesTheSameReportAsBytes() throws {
        let files = try exampleFiles()
        let validator = MarketplaceValidator()
        let prepared = files.map { file -> SourceFile in
            guard case .bytes(let bytes) = file.content else { return file }
            return SourceFile(path: file.path, content: .prepared(validator.prepare(path: file.path, bytes: bytes)))
        }
        let fromBytes = validator.validate(files)
        let fromPrepared = validator.validate(prepared)
        #expect(fromPrepared.diagnostics == fromBytes.diagnostics)
        #expect(fromPrepared.fileCount == fromBytes.fileCount)
        #expect(fromPrepared.manifestCount == fromBytes.manifestCount)
        #expect(fromPrepared.marketplace.subscriptions.keys.sorted() == fromBytes.marketplace.subscriptions.keys.sorted())
        #expect(fromPrepared.marketplace.apis.keys.sorted() == fromBytes.marketplace.apis.keys.sorted())
    }

    @Test func aStoredPreparedFileComesBackWithoutParsing() throws {
        let validator = MarketplaceValidator()
        let text =
            "apiVersion: setu/v1\nkind: Subscription\nmetadata: {name: marksheet}\nspec:\n  api: cbse/class-xii-marksheet\n  plan: gold\n  purpos: typo\n"
        let file = validator.prepare(path: "subscriptions/acme-bank/marksheet.yaml", bytes: Array(text.utf8))
        #expect(file.problems.map(\.rule) == ["schema.unknown-field"])
        var writer = ByteWriter()
        file.write(to: &writer)
        var reader = ByteReader(writer.bytes)
        let restored = try PreparedFile(from: &reader)
        #expect(restored == file)
        #expect(restored.problems == file.problems)
        #expect(restored.subscriptions.map(\.api) == ["cbse/class-xii-marksheet"])
        #expect(restored.subscriptions.map(\.plan) == ["gold"])
    }
}

/// `ManifestDate` checks dates without a regular expression; it must accept exactly
/// what the schemas' `date` pattern accepts.
struct ManifestDateTests {
    static let pattern = #"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"#

    @Test(arguments: [
        "2026-11-28", "0000-01-01", "9999-12-31", "2026-02-30", "2026-00-10", "2026-13-01", "2026-12-00", "2026-12-32",
        "2026-1-01", "2026-01-1", "26-01-01", "2026/01/01", "2026-01-01 ", " 2026-01-01", "2026-01-01\n", "", "2026-0a-01",
        "２０２６-01-01", "2026-01-٠١", "20261-01-01", "2026--01-01", "+026-01-01",
    ])
    func agreesWithTheSchemaPattern(text: String) throws {
        let regex = try NSRegularExpression(pattern: ecmaAnchored(Self.pattern))
        #expect(ManifestDate.isWritten(text) == regex.matches(text))
        #expect(ManifestDate.isValid(text) == (regex.matches(text) && ManifestDate.missingDay(text) == nil))
    }

    @Test func daysThatDoNotExist() {
        #expect(ManifestDate.missingDay("2026-02-30")! == ("February 2026 has 28 days", "2026-02-28"))
        #expect(ManifestDate.missingDay("2026-02-29")! == ("February 2026 has 28 days", "2026-02-28"))
        #expect(ManifestDate.missingDay("2028-02-29") == nil)
        #expect(ManifestDate.missingDay("2000-02-29") == nil)
        #expect(ManifestDate.missingDay("2100-02-29")! == ("February 2100 has 28 days", "2100-02-28"))
        #expect(ManifestDate.missingDay("2026-11-31")! == ("November 2026 has 30 days", "2026-11-30"))
        #expect(ManifestDate.missingDay("2026-12-31") == nil)
        #expect(ManifestDate.missingDay("2026-13-01") == nil)
        #expect(!ManifestDate.isValid("2026-06-31"))
        #expect(ManifestDate.isWritten("2026-06-31"))
    }

    @Test func schemaPatternsEndOnlyAtTheEndOfTheString() throws {
        #expect(ecmaAnchored(#"^[a-z$]+$"#) == #"^[a-z$]+\z"#)
        #expect(ecmaAnchored(#"^a\$b$"#) == #"^a\$b\z"#)
        #expect(ecmaAnchored(#"^a\\$"#) == #"^a\\\z"#)
        let regex = try NSRegularExpression(pattern: ecmaAnchored(Self.pattern))
        #expect(regex.matches("2026-12-31"))
        #expect(!regex.matches("2026-12-31\n"))
    }

    @Test func todayIsTheUTCDate() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let before = calendar.dateComponents([.year, .month, .day], from: Date())
        let today = ManifestDate.today()
        let after = calendar.dateComponents([.year, .month, .day], from: Date())
        let expected = [before, after].map { String(format: "%04d-%02d-%02d", $0.year!, $0.month!, $0.day!) }
        #expect(expected.contains(today))
        #expect(ManifestDate.isValid(today))
    }
}
