import Foundation
import SetuFormats

/// One hit as usage statistics need it, read from a line of the hit log.
public struct UsageHit: Sendable, Equatable {
    /// When the request arrived, in milliseconds since 1970 (UTC).
    public var milliseconds: Int64
    public var consumer: String?
    public var api: String?
    public var publisher: String?
    public var operation: String?
    public var status: Int
    /// `allow`, `deny:<reason>` or `error:<reason>`.
    public var decision: String
    /// The latency in microseconds (the log writes milliseconds with three decimals).
    public var latencyMicroseconds: UInt64
    /// The upstream's time in microseconds, when the request was proxied.
    public var upstreamMicroseconds: UInt64?
    public var bytesIn: UInt64
    public var bytesOut: UInt64
}

/// Reads the lines the hit log writes (`HitRecord.appendJSONLine`): one flat JSON object
/// per line. Written by hand rather than with `JSONSerialization` or `JSONDecoder`, which
/// build a dictionary or a container for every line: `setu usage` reads millions of lines,
/// and a hit line is a flat object of strings, numbers and nulls. Fields it does not know
/// are skipped, so a newer writer's lines still read.
enum HitLine {
    /// Why a line is not a hit.
    struct Failure: Error, Equatable {
        var reason: String

        init(reason: String) {
            self.reason = reason
        }

        /// What the scanner threw: always a failure, as its functions throw nothing else.
        init(_ error: any Error) {
            self = error as? Failure ?? Failure(reason: "\(error)")
        }
    }

    /// The hit on a line (without its newline), every field read.
    static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<UsageHit, Failure> {
        scan(line).flatMap { raw in
            Result {
                UsageHit(
                    milliseconds: raw.milliseconds, consumer: try raw.consumer.text(in: line), api: try raw.api.text(in: line),
                    publisher: try raw.publisher.text(in: line), operation: try raw.operation.text(in: line), status: raw.status,
                    decision: try raw.decision.text(in: line) ?? "", latencyMicroseconds: raw.latencyMicroseconds,
                    upstreamMicroseconds: raw.upstreamMicroseconds, bytesIn: raw.bytesIn, bytesOut: raw.bytesOut)
            }.mapError { Failure($0) }
        }
    }

    /// The string between a line's quotes at `range`, its escapes read; `Scanner.text()`
    /// checked it already.
    static func unescape(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(Failure) -> String {
        var scanner = Scanner(bytes: UnsafeBufferPointer(rebasing: line[..<(range.upperBound + 1)]))
        scanner.index = range.lowerBound - 1
        do {
            return try scanner.string()
        } catch {
            throw Failure(error)
        }
    }

    /// The hit on a line with its strings left where they lie, to be read only if asked for.
    static func scan(_ line: UnsafeBufferPointer<UInt8>) -> Result<RawHit, Failure> {
        var scanner = Scanner(bytes: line)
        do {
            return .success(try scanner.hit())
        } catch {
            return .failure(Failure(error))
        }
    }

    /// A string's UTF-8 as it lies between its quotes (`offset` is where, for the reason).
    /// Nearly every string is ASCII, which needs no validation (and the generic
    /// `String(validating:as:)` looks up type metadata at each call).
    static func text(of utf8: UnsafeBufferPointer<UInt8>, at offset: Int) throws(Failure) -> String {
        var ascii = true
        for (position, byte) in utf8.enumerated() {
            guard byte >= 0x20 else { throw Failure(reason: "a control character inside a string at byte \(offset + position + 1)") }
            if byte >= 0x80 { ascii = false }
        }
        if ascii { return String(decoding: utf8, as: UTF8.self) }
        guard let text = String(validating: utf8, as: UTF8.self) else { throw Failure(reason: "a string that is not UTF-8 at byte \(offset + 1)") }
        return text
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func hit() throws -> RawHit {
            // Nearly every line is as the writer wrote it; any other, or one whose values are
            // wrong, is read again key by key, which says what is wrong with it.
            if let hit = try? writersHit() { return hit }
            index = 0
            var (hasTime, hasStatus) = (false, false)
            var hit = RawHit()
            skipSpaces()
            try expect(UInt8(ascii: "{"), "a JSON object")
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipSpaces()
                    let field = try key()
                    skipSpaces()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipSpaces()
                    try read(field, into: &hit)
                    if field == .ts { hasTime = true }
                    if field == .status { hasStatus = true }
                    skipSpaces()
                    guard let next = peek() else { throw Failure(reason: "the line ends inside the object") }
                    index += 1
                    if next == UInt8(ascii: "}") { break }
                    guard next == UInt8(ascii: ",") else { throw Failure(reason: "expected ',' or '}' at byte \(index)") }
                }
            }
            skipSpaces()
            guard index == bytes.count else { throw Failure(reason: "text after the object at byte \(index + 1)") }
            guard hasTime else { throw Failure(reason: "no \"ts\" field") }
            guard hasStatus else { throw Failure(reason: "no \"status\" field") }
            if case .none = hit.decision { throw Failure(reason: "no \"decision\" field") }
            return hit
        }

        /// Reads the value of `field` into `hit`; passes over the value of a field not read.
        mutating func read(_ field: Field?, into hit: inout RawHit) throws {
            switch field {
            case .ts: hit.milliseconds = try timestamp()
            case .consumer: hit.consumer = try text()
            case .api: hit.api = try text()
            case .publisher: hit.publisher = try text()
            case .operation: hit.operation = try text()
            case .status: hit.status = try number(below: 1000, "status")
            case .decision: hit.decision = try text()
            case .latency: hit.latencyMicroseconds = try duration("latency_ms") ?? 0
            case .upstream: hit.upstreamMicroseconds = try duration("upstream_ms")
            case .bytesIn: hit.bytesIn = try unsigned()
            case .bytesOut: hit.bytesOut = try unsigned()
            case nil: try skipValue()
            }
        }

        /// The line as `HitRecord.appendJSONLine` writes it: its keys in order with nothing
        /// between them, perhaps followed by keys not read. Read straight through, with no
        /// spaces to pass over and no key to look up; nil at the first difference.
        mutating func writersHit() throws -> RawHit? {
            var hit = RawHit()
            for key in Self.writerLine {
                guard follows(key) else { return nil }
                index += key.count
                try read(key.field, into: &hit)
            }
            // Keys the writer adds to some lines (a consent's id, a validation's result).
            while peek() == UInt8(ascii: ",") {
                index += 1
                guard try key() == nil, peek() == UInt8(ascii: ":") else { return nil }
                index += 1
                try skipValue()
            }
            guard peek() == UInt8(ascii: "}"), index + 1 == bytes.count else { return nil }
            if case .none = hit.decision { return nil }
            index += 1
            return hit
        }

        /// A string field's value, or `.none` for null: where it lies, and whether it has an
        /// escape (which is checked here, and read only if asked for).
        mutating func text() throws -> RawHit.Text {
            if try literal("null") { return .none }
            let start = index
            guard try skipString() else { return .bytes((start + 1)..<(index - 1)) }
            index = start
            _ = try string()
            return .escaped((start + 1)..<(index - 1))
        }

        /// The keys in the order `HitRecord.appendJSONLine` writes them, each with the byte
        /// before it (`{` for the first, `,` for the others), its quotes and colon, and the
        /// field it is (nil for one not read).
        static let writerLine: [Key] = [
            ("ts", .ts), ("seq", nil), ("request_id", nil), ("config_rev", nil), ("consumer", .consumer), ("client_id", nil),
            ("api", .api), ("publisher", .publisher), ("category", nil), ("operation", .operation), ("method", nil), ("path", nil),
            ("status", .status), ("decision", .decision), ("latency_ms", .latency), ("upstream_ms", .upstream),
            ("bytes_in", .bytesIn), ("bytes_out", .bytesOut), ("client_ip", nil),
        ].enumerated().map { place, key in Key(Array("\(place == 0 ? "{" : ",")\"\(key.0)\":".utf8), key.1) }

        /// A key of at most 16 bytes as two little-endian words and the masks of its bytes: a
        /// line's 19 keys are each told by two loads and compares, not a call to `memcmp`.
        struct Key {
            let words: (UInt64, UInt64)
            let masks: (UInt64, UInt64)
            let count: Int
            let field: Field?

            init(_ text: [UInt8], _ field: Field?) {
                precondition(text.count <= 16)
                var words: (UInt64, UInt64) = (0, 0)
                var masks: (UInt64, UInt64) = (0, 0)
                for (offset, byte) in text.enumerated() {
                    let shift = UInt64(offset % 8 * 8)
                    if offset < 8 {
                        words.0 |= UInt64(byte) << shift
                        masks.0 |= 0xFF << shift
                    } else {
                        words.1 |= UInt64(byte) << shift
                        masks.1 |= 0xFF << shift
                    }
                }
                self.words = words
                self.masks = masks
                self.count = text.count
                self.field = field
            }
        }

        /// Whether the bytes at the scanner's place are `key`.
        func follows(_ key: Key) -> Bool {
            let left = bytes.count - index
            guard left >= key.count else { return false }
            let at = UnsafeRawPointer(bytes.baseAddress! + index)
            if left >= 16 {
                let first = UInt64(littleEndian: at.loadUnaligned(as: UInt64.self))
                let second = UInt64(littleEndian: at.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                return first & key.masks.0 == key.words.0 && second & key.masks.1 == key.words.1
            }
            // The line's last bytes: byte by byte.
            for offset in 0..<key.count {
                let word = offset < 8 ? key.words.0 : key.words.1
                guard at.load(fromByteOffset: offset, as: UInt8.self) == UInt8(truncatingIfNeeded: word >> UInt64(offset % 8 * 8)) else {
                    return false
                }
            }
            return true
        }

        /// The fields read; every other is skipped.
        enum Field: CaseIterable {
            case ts, consumer, api, publisher, operation, status, decision, latency, upstream, bytesIn, bytesOut

            var name: StaticString {
                switch self {
                case .ts: "ts"
                case .consumer: "consumer"
                case .api: "api"
                case .publisher: "publisher"
                case .operation: "operation"
                case .status: "status"
                case .decision: "decision"
                case .latency: "latency_ms"
                case .upstream: "upstream_ms"
                case .bytesIn: "bytes_in"
                case .bytesOut: "bytes_out"
                }
            }
        }

        func peek() -> UInt8? {
            index < bytes.count ? bytes[index] : nil
        }

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0D { index += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws {
            guard index < bytes.count, bytes[index] == byte else {
                throw Failure(reason: index < bytes.count ? "expected \(what()) at byte \(index + 1)" : "the line ends before \(what())")
            }
            index += 1
        }

        /// The field a key names (nil for one not read); keys have no escapes, as the writer writes them.
        mutating func key() throws -> Field? {
            try expect(UInt8(ascii: "\""), "a key")
            let start = index
            guard let quote = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\"")), bytes.count - start) else {
                throw Failure(reason: "the line ends inside a key")
            }
            index = UnsafePointer<UInt8>(quote.assumingMemoryBound(to: UInt8.self)) - bytes.baseAddress!
            if let slash = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\\")), index - start) {
                let at = UnsafePointer<UInt8>(slash.assumingMemoryBound(to: UInt8.self)) - bytes.baseAddress!
                throw Failure(reason: "an escaped key at byte \(at + 1)")
            }
            defer { index += 1 }
            let key = UnsafeBufferPointer(rebasing: bytes[start..<index])
            func named(_ field: Field) -> Field? {
                let name = field.name
                return name.utf8CodeUnitCount == key.count && memcmp(name.utf8Start, key.baseAddress!, key.count) == 0 ? field : nil
            }
            // By length first: one comparison for most keys.
            switch key.count {
            case 2: return named(.ts)
            case 3: return named(.api)
            case 6: return named(.status)
            case 8:
                switch key.first {
                case UInt8(ascii: "c"): return named(.consumer)
                case UInt8(ascii: "d"): return named(.decision)
                case UInt8(ascii: "b"): return named(.bytesIn)
                default: return nil
                }
            case 9:
                switch key.first {
                case UInt8(ascii: "p"): return named(.publisher)
                case UInt8(ascii: "o"): return named(.operation)
                case UInt8(ascii: "b"): return named(.bytesOut)
                default: return nil
                }
            case 10: return named(.latency)
            case 11: return named(.upstream)
            default: return nil
            }
        }

        mutating func optionalString() throws -> String? {
            if try literal("null") { return nil }
            return try string()
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""), "a string")
            let start = index
            // Most strings have no escapes: taken as they are.
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") { index += 1 }
            guard index < bytes.count else { throw Failure(reason: "the line ends inside a string") }
            if bytes[index] == UInt8(ascii: "\"") {
                defer { index += 1 }
                return try HitLine.text(of: UnsafeBufferPointer(rebasing: bytes[start..<index]), at: start)
            }
            var text = Array(bytes[start..<index])
            while true {
                guard index < bytes.count else { throw Failure(reason: "the line ends inside a string") }
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") { break }
                guard byte == UInt8(ascii: "\\") else {
                    guard byte >= 0x20 else { throw Failure(reason: "a control character inside a string at byte \(index)") }
                    text.append(byte)
                    continue
                }
                guard let escaped = peek() else { throw Failure(reason: "the line ends inside a string") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), peek() == UInt8(ascii: "\\") {
                        index += 1
                        try expect(UInt8(ascii: "u"), "the second half of a surrogate pair")
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Failure(reason: "a broken surrogate pair at byte \(index)") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let value = Unicode.Scalar(scalar) else { throw Failure(reason: "a lone surrogate at byte \(index)") }
                    text.append(contentsOf: String(Character(value)).utf8)
                default: throw Failure(reason: "an unknown escape at byte \(index)")
                }
            }
            // Unescaped, it may hold control characters; it must still be UTF-8.
            guard let decoded = String(validating: text, as: UTF8.self) else {
                throw Failure(reason: "a string that is not UTF-8 at byte \(start + 1)")
            }
            return decoded
        }

        /// Passes over a string, checking only that it ends; whether it holds an escape.
        @discardableResult
        mutating func skipString() throws -> Bool {
            try expect(UInt8(ascii: "\""), "a string")
            // Most strings have no escape: the closing quote is the first quote or backslash,
            // looked for eight bytes at a time (the strings are short, so one pass inline
            // beats two calls to `memchr`).
            let base = UnsafeRawPointer(bytes.baseAddress!)
            while bytes.count - index >= 8 {
                let word = UInt64(littleEndian: (base + index).loadUnaligned(as: UInt64.self))
                let found = Self.zeroBytes(word ^ 0x2222_2222_2222_2222) | Self.zeroBytes(word ^ 0x5C5C_5C5C_5C5C_5C5C)
                guard found == 0 else {
                    index += found.trailingZeroBitCount / 8
                    break
                }
                index += 8
            }
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") { index += 1 }
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                return false
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") { return true }
                if byte == UInt8(ascii: "\\") { index += 1 }
            }
            throw Failure(reason: "the line ends inside a string")
        }

        /// The high bit of each byte of `word` that is zero. A byte above a zero byte may be
        /// marked too, so only the lowest mark is sure; the lowest is all `skipString` asks.
        static func zeroBytes(_ word: UInt64) -> UInt64 {
            (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw Failure(reason: "the line ends inside a \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw Failure(reason: "a bad \\u escape at byte \(index + 1)")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// Whether the literal is next, taking it.
        mutating func literal(_ word: StaticString) throws -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func unsigned() throws -> UInt64 {
            let start = index
            var value: UInt64 = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (product, overflow) = value.multipliedReportingOverflow(by: 10)
                guard !overflow else { throw Failure(reason: "a number too large at byte \(start + 1)") }
                value = product + UInt64(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            guard index > start else {
                throw Failure(reason: index < bytes.count ? "expected a whole number at byte \(index + 1)" : "the line ends before a number")
            }
            return value
        }

        /// A whole number below `limit`, as a status is.
        mutating func number(below limit: UInt64, _ name: String) throws -> Int {
            let start = index
            let value = try unsigned()
            guard value < limit else { throw Failure(reason: "\"\(name)\" is out of range at byte \(start + 1)") }
            return Int(value)
        }

        /// A time in milliseconds as microseconds, at most a year: a longer one is no request's
        /// (and would stretch a histogram over the whole range of 64 bits).
        mutating func duration(_ name: String) throws -> UInt64? {
            let start = index
            guard let microseconds = try thousandths() else { return nil }
            guard microseconds <= 365 * 86_400_000_000 else { throw Failure(reason: "\"\(name)\" is out of range at byte \(start + 1)") }
            return microseconds
        }

        /// A decimal with up to three places, in thousandths (`1.234` → 1234); nil for `null`.
        mutating func thousandths() throws -> UInt64? {
            if try literal("null") { return nil }
            let whole = try unsigned()
            var fraction: UInt64 = 0
            var places = 0
            if peek() == UInt8(ascii: ".") {
                index += 1
                let start = index
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                    if places < 3 {
                        fraction = fraction * 10 + UInt64(bytes[index] - UInt8(ascii: "0"))
                        places += 1
                    }
                    index += 1
                }
                guard index > start else { throw Failure(reason: "expected digits after '.' at byte \(index + 1)") }
            }
            for _ in places..<3 { fraction *= 10 }
            let (scaled, overflow) = whole.multipliedReportingOverflow(by: 1000)
            guard !overflow else { throw Failure(reason: "a number too large at byte \(index)") }
            return scaled + fraction
        }

        /// `"2026-11-29T08:15:02.123Z"`, as the writer spells it, in milliseconds since 1970.
        mutating func timestamp() throws -> Int64 {
            let start = index
            try skipString()
            let quoted = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<(index - 1)])
            guard let milliseconds = UsageTime.milliseconds(rfc3339: quoted) else {
                index = start
                throw Failure(reason: "\"ts\" is not a time like 2026-11-29T08:15:02.123Z: \(try string())")
            }
            return milliseconds
        }

        /// Skips a value of a field not read: a string, a number, a literal, or an object or array.
        mutating func skipValue() throws {
            guard let first = peek() else { throw Failure(reason: "the line ends before a value") }
            switch first {
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                repeat {
                    guard let byte = peek() else { throw Failure(reason: "the line ends inside a value") }
                    if byte == UInt8(ascii: "\"") {
                        try skipString()
                        continue
                    }
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                    if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { depth -= 1 }
                    index += 1
                } while depth > 0
            default:
                if try literal("null") || literal("true") || literal("false") { return }
                let start = index
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                        UInt8(ascii: "e"), UInt8(ascii: "E"):
                        index += 1
                        continue
                    default: break
                    }
                    break
                }
                guard index > start else { throw Failure(reason: "a value that is not JSON at byte \(start + 1)") }
            }
        }
    }
}

/// Times as `setu usage` reads them: the log's timestamps, and the `--since`/`--until` options.
public enum UsageTime {
    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z` in milliseconds since 1970; nil for anything else.
    public static func milliseconds(rfc3339 text: String) -> Int64? {
        Array(text.utf8).withUnsafeBufferPointer { milliseconds(rfc3339: $0) }
    }

    /// `milliseconds(rfc3339:)` of UTF-8 as it lies in a line.
    static func milliseconds(rfc3339 utf8: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard utf8.count >= 20, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-"), utf8[10] == UInt8(ascii: "T"),
            utf8[13] == UInt8(ascii: ":"), utf8[16] == UInt8(ascii: ":"), utf8.last == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard utf8[index] >= UInt8(ascii: "0"), utf8[index] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(utf8[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var milliseconds: Int64 = 0
        if utf8.count > 20 {
            guard utf8[19] == UInt8(ascii: "."), utf8.count <= 30, let fraction = number(20..<(utf8.count - 1)) else { return nil }
            let digits = utf8.count - 21
            milliseconds = digits >= 3 ? fraction / Int64(pow10(digits - 3)) : fraction * Int64(pow10(3 - digits))
        } else if utf8.count != 20 {
            return nil
        }
        let days = Timestamp.daysSinceEpoch(year: year, month: month, day: day)
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milliseconds
    }

    private static func pow10(_ exponent: Int) -> Int {
        (0..<exponent).reduce(1) { value, _ in value * 10 }
    }
}

/// A hit as it lies in its line: its numbers read, its strings left where they are, so
/// that only the ones a query asks for become `String`s. It holds no reference, so a copy
/// is a copy of its bytes.
struct RawHit {
    /// A string field.
    enum Text {
        /// Absent, or null.
        case none
        /// Where it lies in the line, between its quotes: it has no escape.
        case bytes(Range<Int>)
        /// Where it lies, between its quotes: it has escapes, read when it is asked for.
        case escaped(Range<Int>)

        /// The text, in `line`; nil for `.none`.
        func text(in line: UnsafeBufferPointer<UInt8>) throws(HitLine.Failure) -> String? {
            switch self {
            case .none: return nil
            case .escaped(let range): return try HitLine.unescape(line, range)
            case .bytes(let range): return try HitLine.text(of: UnsafeBufferPointer(rebasing: line[range]), at: range.lowerBound)
            }
        }

        /// Whether the text is exactly `word`.
        func equals(_ word: StaticString, in line: UnsafeBufferPointer<UInt8>) -> Bool {
            switch self {
            case .none: return false
            case .escaped:
                let text = try? self.text(in: line)
                return text?.utf8.elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)) ?? false
            case .bytes(let range):
                return range.count == word.utf8CodeUnitCount
                    && memcmp(line.baseAddress! + range.lowerBound, word.utf8Start, range.count) == 0
            }
        }
    }

    var milliseconds: Int64 = 0
    var status = 0
    var decision = Text.none
    var consumer = Text.none
    var api = Text.none
    var publisher = Text.none
    var operation = Text.none
    var latencyMicroseconds: UInt64 = 0
    var upstreamMicroseconds: UInt64?
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
}
