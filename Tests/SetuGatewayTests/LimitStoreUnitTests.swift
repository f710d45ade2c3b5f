import NIOCore
import Testing

@testable import SetuGateway

/// Redis's protocol as the limit store speaks it, and `--limits` URLs.
@Suite struct LimitStoreUnitTests {
    private func parse(_ text: String) throws -> (RESPValue?, Int) {
        var buffer = ByteBuffer(string: text)
        let value = try RESPDecoder.parse(&buffer, depth: 0)
        return (value, buffer.readableBytes)
    }

    @Test func everyReplyTypeIsRead() throws {
        #expect(try parse("+OK\r\n").0 == .simple("OK"))
        #expect(try parse("-NOSCRIPT No matching script. Please use EVAL.\r\n").0 == .error("NOSCRIPT No matching script. Please use EVAL."))
        #expect(try parse(":-42\r\n").0 == .integer(-42))
        #expect(try parse("$5\r\nhello\r\n").0 == .bulk(Array("hello".utf8)))
        #expect(try parse("$0\r\n\r\n").0 == .bulk([]))
        #expect(try parse("$-1\r\n").0 == .bulk(nil))
        #expect(try parse("*-1\r\n").0 == .array(nil))
        let (array, left) = try parse("*3\r\n:1\r\n$2\r\n17\r\n*1\r\n+x\r\n:9\r\n")
        #expect(array == .array([.integer(1), .bulk(Array("17".utf8)), .array([.simple("x")])]))
        #expect(left == 4, "the next reply stays in the buffer")
        if case .array(let values?) = array { #expect(values[1].integer == 17, "a bulk string of digits reads as an integer") }
    }

    @Test func aReplySplitAnywhereWaitsForTheRest() throws {
        let whole = "*2\r\n:1\r\n$5\r\nhello\r\n"
        for cut in 0..<whole.utf8.count {
            let part = String(decoding: Array(whole.utf8)[..<cut], as: UTF8.self)
            #expect(try parse(part).0 == nil, "cut at \(cut)")
        }
        #expect(try parse(whole).0 == .array([.integer(1), .bulk(Array("hello".utf8))]))
    }

    @Test func bytesThatAreNotRESPAreRefused() {
        for bad in ["?what\r\n", ":12x\r\n", "$-7\r\n", "$3\r\nabcde\r\n", "*-2\r\n", "$99999999999\r\n"] {
            #expect(throws: RESPProtocolError.self, "\(bad.debugDescription)") { try parse(bad) }
        }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPCommand.write(["SELECT", "2"], into: &buffer)
        #expect(String(buffer: buffer) == "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n")
    }

    @Test func scriptsAreNamedByTheirSHA1() {
        for script in LimitScript.allCases {
            #expect(script.sha.count == 40 && script.sha.allSatisfy(\.isHexDigit))
        }
        #expect(LimitScript.check.sha != LimitScript.sync.sha)
    }

    @Test func limitURLsAreReadWithTheirParts() throws {
        let plain = try LimitStoreAddress(url: "redis://127.0.0.1:6380/2")
        #expect((plain.host, plain.port, plain.database, plain.password) == ("127.0.0.1", 6380, 2, nil))
        let defaults = try LimitStoreAddress(url: "redis://cache.internal")
        #expect((defaults.host, defaults.port, defaults.database) == ("cache.internal", 6379, 0))
        let secret = try LimitStoreAddress(url: "redis://setu:s3cret@[::1]:7000/1")
        #expect((secret.host, secret.port, secret.username, secret.password) == ("::1", 7000, "setu", "s3cret"))
        #expect(secret.description == "redis://setu:***@[::1]:7000/1", "the password is never shown")
        let passwordOnly = try LimitStoreAddress(url: "redis://:pw@localhost")
        #expect((passwordOnly.username, passwordOnly.password) == (nil, "pw"))
    }

    @Test func badLimitURLsSayWhatIsWrong() {
        let cases = [
            ("http://127.0.0.1:6379", "is not a redis:// URL"),
            ("redis://127.0.0.1:99999", "port that is not a number from 1 to 65535"),
            ("redis://:6379", "names no host"),
            ("redis://127.0.0.1/zero", "database 'zero' that is not a number"),
            ("redis://[::1:6379", "without its closing ]"),
        ]
        for (url, message) in cases {
            #expect {
                _ = try LimitStoreAddress(url: url)
            } throws: { error in
                "\(error)".contains(message)
            }
        }
    }
}
