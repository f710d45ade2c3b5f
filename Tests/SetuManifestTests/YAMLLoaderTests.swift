import SetuManifest
import Testing

struct YAMLLoaderTests {
    func load(_ text: String) throws -> [JSONValue] {
        try YAMLLoader.load(Array(text.utf8), file: "t.yaml").get().map(\.value)
    }

    func problem(_ text: String) -> String {
        switch YAMLLoader.load(Array(text.utf8), file: "t.yaml") {
        case .success: return "no problem"
        case .failure(let diagnostic): return DiagnosticFormatter.headline(diagnostic)
        }
    }

    @Test func appliesTheYAML12CoreSchema() throws {
        let value = try load(
            """
            a: no
            b: on
            c: 2027-06-30
            d: 0x1F
            e: 0o17
            f: 1.5e3
            g: ~
            h: TRUE
            i: "42"
            j: -7
            k: .inf
            l: 3.0.0
            m: 'true'

            """)[0]
        #expect(
            value
                == .object([
                    "a": .string("no"), "b": .string("on"), "c": .string("2027-06-30"), "d": .number(31), "e": .number(15),
                    "f": .number(1500), "g": .null, "h": .bool(true), "i": .string("42"), "j": .number(-7),
                    "k": .number(.infinity), "l": .string("3.0.0"), "m": .string("true"),
                ]))
    }

    @Test func readsEveryDocumentOfAFileWithPositions() throws {
        let documents = try YAMLLoader.load(Array("a: 1\n---\nb:\n  - x\n  - y\n".utf8), file: "t.yaml").get()
        #expect(documents.count == 2)
        #expect(documents[1].location(of: JSONPointer(["b"])) == SourceLocation(line: 3, column: 1))
        #expect(documents[1].location(of: JSONPointer(["b", "1"])) == SourceLocation(line: 5, column: 5))
        #expect(documents[1].location(of: JSONPointer(["b", "9"])) == SourceLocation(line: 3, column: 1))
    }

    @Test func duplicateKeysAreReported() {
        #expect(problem("a: 1\na: 2\n") == "t.yaml:1:1: error[yaml.duplicate-key]: the mapping has the key 'a' more than once")
    }

    @Test func aliasesAsKeysAreRefusedBeforeParsing() {
        #expect(problem("x: &a k\n*a : v\n") == "t.yaml:2:1: error[yaml.aliases]: an alias is used as a mapping key")
        #expect(problem("x: &a [k]\n? *a\n: v\n") == "t.yaml:2:3: error[yaml.aliases]: aliases cannot be combined with complex mapping keys")
    }

    @Test func aFewAliasesAreFine() throws {
        let value = try load("base: &b {plan: standard}\nother: *b\n")[0]
        #expect(value["other"] == .object(["plan": .string("standard")]))
    }

    @Test func asterisksInTextAreNotAliases() throws {
        let value = try load("purpose: Verify *all* records, * and more\nquoted: '*x'\n")[0]
        #expect(value["purpose"] == .string("Verify *all* records, * and more"))
    }

    @Test func tooManyAliases() {
        let text = "a: &a x\nb: [" + Array(repeating: "*a", count: 101).joined(separator: ", ") + "]\n"
        #expect(problem(text) == "t.yaml:2:405: error[yaml.aliases]: the file uses more than 100 aliases")
    }

    @Test func unsupportedTagsAreReported() {
        #expect(problem("a: !python/object x\n") == "t.yaml:1:4: error[yaml.tag]: unsupported tag !python/object")
    }

    @Test func complexKeysAreReported() {
        #expect(problem("? [a, b]\n: v\n") == "t.yaml:1:3: error[yaml.key]: mapping keys must be plain values, not lists or mappings")
    }

    @Test func invalidUTF8PositionCountsCharactersNotBytes() {
        let bytes: [UInt8] = Array("a: é\nb: x".utf8) + [0xE2, 0x28, 0xA1]
        switch YAMLLoader.load(bytes, file: "t.yaml") {
        case .success: Issue.record("invalid UTF-8 was accepted")
        case .failure(let diagnostic):
            #expect(DiagnosticFormatter.headline(diagnostic) == "t.yaml:2:5: error[yaml.utf8]: invalid UTF-8 byte 0xE2")
        }
    }

    @Test func controlCharactersAreReported() {
        #expect(problem("a: b\u{1}c\n") == "t.yaml:1:5: error[yaml.syntax]: control characters are not allowed")
    }

    @Test func fileSizeLimit() {
        let limits = LoadLimits(maxFileBytes: 10)
        switch YAMLLoader.load(Array("a: 12345678901\n".utf8), file: "t.yaml", limits: limits) {
        case .success: Issue.record("an oversized file was read")
        case .failure(let diagnostic):
            #expect(DiagnosticFormatter.headline(diagnostic) == "t.yaml:1:1: error[file.too-large]: file is 15 bytes, over the limit of 10 bytes")
        }
    }
}
