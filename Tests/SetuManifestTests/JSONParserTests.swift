import Foundation
import SetuManifest
import Testing

/// The JSON reader the gateway parses bodies and tokens with: RFC 8259, and an error that
/// says where.
struct JSONParserTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try JSONValue(json: Data(text.utf8))
    }

    func failure(_ text: String) -> JSONParseError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func valuesOfEveryKindAreRead() throws {
        let value = try parse(#" {"a": [1, -2.5e3, 0, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud834\udd1e", "o": {}} "#)
        #expect(
            value
                == .object([
                    "a": .array([.number(1), .number(-2500), .number(0), .bool(true), .bool(false), .null]),
                    "s": .string("x\"\\/\u{8}\u{c}\n\r\té𝄞"), "o": .object([:]),
                ]))
        #expect(try parse(#"{"k":1,"k":2}"#) == .object(["k": .number(2)]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("\"日本\"") == .string("日本"))
    }

    @Test func whatIsNotJSONIsRefusedWithItsPlace() {
        #expect(failure("not json")?.description == "expected 'null' at byte 0")
        #expect(failure("<xml/>")?.description == "unexpected '<' where a value should be at byte 0")
        #expect(failure("{\"a\":1,}")?.offset == 7)
        #expect(failure("[1 2]")?.message == "expected ',' or ']' in an array")
        #expect(failure("{\"a\" 1}")?.message == "expected ':' after a member name")
        #expect(failure("01")?.message == "a number may not start with 0")
        #expect(failure("1.")?.message == "a number needs digits after '.'")
        #expect(failure("-")?.message == "a number needs digits")
        #expect(failure("\"a\nb\"")?.message == "a control character in a string must be escaped")
        #expect(failure(#""\ud834""#)?.message == "a high surrogate without its low one")
        #expect(failure(#""\x""#)?.message == #"'\x' is not a JSON escape"#)
        #expect(failure("{} {}")?.message == "unexpected text after the JSON value")
        #expect(failure("\"abc")?.message == "the JSON ends inside a string")
        #expect(failure("")?.message == "the JSON ends where a value should be")
        #expect(failure(String(repeating: "[", count: 600) + String(repeating: "]", count: 600))?.message == "nested more than 512 deep")
        #expect(throws: JSONParseError.self) { try JSONValue(json: Data([0x22, 0xff, 0x22])) }
    }
}
