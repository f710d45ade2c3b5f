import SetuFormats

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
    public init(
        timestampMilliseconds: Int64, requestId: String, configRevision: String, method: String,
        path: String, clientIP: String
    ) {
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
