/// One request the gateway answered, as the hit log records it (DESIGN.md §8).
///
/// The gateway fills it on the request path; the hit log's writer thread gives it a
/// sequence number and encodes it, so a request never pays for JSON encoding. It has no
/// field for a key, a token or a query string, so none can be written.
public struct HitRecord: Sendable, Equatable {
    /// When the request arrived, in milliseconds since 1970 (UTC).
    public var timestampMilliseconds: Int64
    /// The request id: the client's `X-Request-ID` when well-formed, else one the gateway made.
    public var requestId: String
    /// The commit the serving snapshot was built from; empty before the first reconcile.
    public var configRevision: String
    /// The consumer the credentials belong to, once authenticated.
    public var consumer: String?
    /// The client id sent, once it names a registered credential.
    public var clientId: String?
    /// The API id, `<publisher>/<name>`, once routed.
    public var api: String?
    /// The API's publisher, once routed.
    public var publisher: String?
    /// The publisher's category (`document`, `service`), once routed.
    public var category: String?
    /// The OpenAPI operationId, when the API describes its operations.
    public var operation: String?
    /// The request method.
    public var method: String
    /// The request path, without its query string.
    public var path: String
    /// The status sent to the client.
    public var status: Int
    /// `allow`, or `deny:<reason>`.
    public var decision: String
    /// From arrival until the last byte of the response was handed to the connection.
    public var latencyMilliseconds: Double
    /// From sending to the upstream until its response ended, when it was proxied.
    public var upstreamMilliseconds: Double?
    /// Request body bytes received.
    public var bytesIn: Int
    /// Response body bytes sent.
    public var bytesOut: Int
    /// The client's address.
    public var clientIP: String
    /// The consent the call presented, where there is one.
    public var consentId: String?
    /// Where the request failed the API's OpenAPI document, when the API only reports it.
    public var validation: String?

    /// Creates a record; the fields known only later default to empty.
    public init(timestampMilliseconds: Int64, requestId: String, configRevision: String, method: String,
                path: String, clientIP: String) {
        self.timestampMilliseconds = timestampMilliseconds
        self.requestId = requestId
        self.configRevision = configRevision
        self.method = method
        self.path = path
        self.clientIP = clientIP
        status = 0
        decision = "allow"
        latencyMilliseconds = 0
        bytesIn = 0
        bytesOut = 0
    }

    /// The record as one line of JSON, newline included, with `seq` its sequence number.
    public func jsonLine(sequence: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        appendJSONLine(sequence: sequence, to: &bytes)
        return bytes
    }

    /// Appends the record as one line of JSON, newline included, to `bytes`.
    ///
    /// Written by hand rather than with `JSONEncoder`: the writer thread encodes every
    /// hit, the field order is part of the format, and the output is a few fixed fields.
    public func appendJSONLine(sequence: UInt64, to bytes: inout [UInt8]) {
        var line = JSONLine(opening: &bytes)
        line.timestamp("ts", timestampMilliseconds, into: &bytes)
        line.field("seq", sequence, into: &bytes)
        line.field("request_id", requestId, into: &bytes)
        line.field("config_rev", configRevision, into: &bytes)
        line.field("consumer", consumer, into: &bytes)
        line.field("client_id", clientId, into: &bytes)
        line.field("api", api, into: &bytes)
        line.field("publisher", publisher, into: &bytes)
        line.field("category", category, into: &bytes)
        line.field("operation", operation, into: &bytes)
        line.field("method", method, into: &bytes)
        line.field("path", path, into: &bytes)
        line.field("status", UInt64(max(status, 0)), into: &bytes)
        line.field("decision", decision, into: &bytes)
        line.field("latency_ms", latencyMilliseconds, into: &bytes)
        line.field("upstream_ms", upstreamMilliseconds, into: &bytes)
        line.field("bytes_in", UInt64(max(bytesIn, 0)), into: &bytes)
        line.field("bytes_out", UInt64(max(bytesOut, 0)), into: &bytes)
        line.field("client_ip", clientIP, into: &bytes)
        if let consentId { line.field("consent_id", consentId, into: &bytes) }
        if let validation { line.field("validation", validation, into: &bytes) }
        line.close(&bytes)
    }
}

/// A JSON object written field by field onto the end of a byte buffer, which each call
/// takes `inout`, so that appending never copies what the buffer already holds.
struct JSONLine {
    private var first = true

    init(opening bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: StaticString, _ bytes: inout [UInt8]) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: StaticString, _ value: String?, into bytes: inout [UInt8]) {
        key(name, &bytes)
        guard let value else { bytes.append(contentsOf: "null".utf8); return }
        JSONString.append(value, to: &bytes)
    }

    mutating func field(_ name: StaticString, _ value: UInt64, into bytes: inout [UInt8]) {
        key(name, &bytes)
        Timestamp.appendDigits(value, minimumWidth: 1, to: &bytes)
    }

    mutating func field(_ name: StaticString, _ value: Double?, into bytes: inout [UInt8]) {
        key(name, &bytes)
        guard let value, value.isFinite else { bytes.append(contentsOf: "null".utf8); return }
        // Three decimals: microsecond precision is what a latency in milliseconds needs.
        let thousandths = UInt64((max(value, 0) * 1000).rounded())
        Timestamp.appendDigits(thousandths / 1000, minimumWidth: 1, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        Timestamp.appendDigits(thousandths % 1000, minimumWidth: 3, to: &bytes)
    }

    /// `"2026-11-29T08:15:02.123Z"`, as `Timestamp.rfc3339` spells it.
    mutating func timestamp(_ name: StaticString, _ milliseconds: Int64, into bytes: inout [UInt8]) {
        key(name, &bytes)
        bytes.append(UInt8(ascii: "\""))
        Timestamp.appendRFC3339(milliseconds: milliseconds, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    func close(_ bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "}"))
        bytes.append(UInt8(ascii: "\n"))
    }
}

/// A JSON string literal written into bytes, for the few fixed JSON shapes Setu writes on
/// hot paths (hit lines, problem bodies).
public enum JSONString {
    /// Appends `value` quoted and escaped as RFC 8785 §3.2.2.2 does: `"`, `\`, and the
    /// control characters (by their short escape where JSON has one); nothing else.
    public static func append(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        // Most values need no escaping: copy them whole.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: value.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): bytes.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): bytes.append(contentsOf: "\\t".utf8)
            case 0x08: bytes.append(contentsOf: "\\b".utf8)
            case 0x0C: bytes.append(contentsOf: "\\f".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// UTC calendar arithmetic for log timestamps and file names, without Foundation's
/// formatters (which are costly to create and not needed for one fixed format).
public enum Timestamp {
    /// `2026-11-29T08:15:02.123Z`.
    public static func rfc3339(milliseconds: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendRFC3339(milliseconds: milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `2026-11-29T08:15:02.123Z` to `bytes`, without making a `String`: each hit's
    /// line carries one.
    public static func appendRFC3339(milliseconds: Int64, to bytes: inout [UInt8]) {
        let (days, msOfDay) = milliseconds.quotientAndRemainderFloored(dividingBy: 86_400_000)
        let (year, month, day) = civil(daysSinceEpoch: days)
        appendDigits(UInt64(max(year, 0)), minimumWidth: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(month), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(UInt64(day), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(UInt64(msOfDay / 3_600_000), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(msOfDay / 60_000 % 60), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(UInt64(msOfDay / 1000 % 60), minimumWidth: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        appendDigits(UInt64(msOfDay % 1000), minimumWidth: 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Decimal digits of `value`, zero-padded to `minimumWidth`, without making a `String`.
    static func appendDigits(_ value: UInt64, minimumWidth: Int, to bytes: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            while count < minimumWidth && count < 20 {
                buffer[19 - count] = UInt8(ascii: "0")
                count += 1
            }
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// `2026-11-29`: the UTC day of a time.
    public static func day(milliseconds: Int64) -> String {
        let (days, _) = milliseconds.quotientAndRemainderFloored(dividingBy: 86_400_000)
        return day(daysSinceEpoch: days)
    }

    /// `2026-11-29` for a count of days since 1970-01-01.
    public static func day(daysSinceEpoch days: Int64) -> String {
        let (year, month, day) = civil(daysSinceEpoch: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// The IMF-fixdate of RFC 9110 §5.6.7, as HTTP's `Date` header carries it:
    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func httpDate(seconds: Int64) -> String {
        let (days, secondOfDay) = seconds.quotientAndRemainderFloored(dividingBy: 86_400)
        let (year, month, day) = civil(daysSinceEpoch: days)
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = weekdays[Int((days % 7 + 7) % 7)]
        return "\(weekday), \(pad(day, 2)) \(months[Int(month) - 1]) \(pad(year, 4)) "
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)) GMT"
    }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` day, or nil when it is not one.
    public static func daysSinceEpoch(of text: some StringProtocol) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int64(parts[0]), let month = Int64(parts[1]), let day = Int64(parts[2]),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        return daysSinceEpoch(year: year, month: month, day: day)
    }

    /// Days since 1970-01-01 of a day of the proleptic Gregorian calendar (Howard
    /// Hinnant's days_from_civil); a day past the month's end counts on into the next.
    public static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Year, month and day of a count of days since 1970-01-01 (Howard Hinnant's civil_from_days).
    public static func civil(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Int64 {
    func quotientAndRemainderFloored(dividingBy divisor: Int64) -> (Int64, Int64) {
        let (q, r) = quotientAndRemainder(dividingBy: divisor)
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}
