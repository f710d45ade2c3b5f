import NIOHTTP1

/// Step 2 of the pipeline: the request head must frame exactly one request that the
/// gateway may pass on. NIO's parser has already refused what RFC 9112 forbids outright
/// (Content-Length with Transfer-Encoding, a repeated or malformed Content-Length, obs-fold,
/// bare CR or LF, NUL); this stage refuses the rest, before anything reaches an upstream:
///
/// - `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1), and any coding but `chunked`;
/// - `CONNECT` and `Upgrade`: the gateway is neither a tunnel nor a protocol switch;
/// - more header lines, or more header bytes, than the limits (431), a longer target (414);
/// - a missing, repeated or malformed `Host` (RFC 9112 §3.2);
/// - targets other than origin-form, or absolute-form naming the `Host` sent;
/// - a body declared over the limit (413), an `Expect` other than `100-continue` (417);
/// - paths with dot segments, `;` parameters or encoded `/`, `\`, `.` or NUL, which an
///   upstream could read as a different resource than the one routed and authorized.
enum FramingStage {
    static func run(_ exchange: Exchange, limits: GatewayConfiguration) throws(ProblemDetails) {
        let request = exchange.request
        var hosts = 0
        var host: String?
        var transferEncoding: String?
        var contentLength: String?
        var expect: String?
        var upgrade: String?
        var headerBytes = 0
        for (name, value) in request.headers {
            headerBytes += name.utf8.count + value.utf8.count
            switch name.utf8.count {
            case 4 where HeaderName.equals(name, "host"):
                hosts += 1
                host = value
            case 6 where HeaderName.equals(name, "expect"):
                expect = value
            case 7 where HeaderName.equals(name, "upgrade"):
                upgrade = value
            case 14 where HeaderName.equals(name, "content-length"):
                contentLength = value
            case 17 where HeaderName.equals(name, "transfer-encoding"):
                transferEncoding = transferEncoding.map { $0 + ", " + value } ?? value
            default:
                break
            }
        }

        let http10 = request.version.major == 1 && request.version.minor == 0
        if transferEncoding != nil && http10 {
            throw .badRequest("Transfer-Encoding is not allowed in an HTTP/1.0 request (RFC 9112 §6.1); send Content-Length, or speak HTTP/1.1.")
        }
        if request.method == .CONNECT { throw .unsupportedMethod("CONNECT") }
        if let upgrade { throw .upgradeRefused(upgrade) }
        if request.headers.count > limits.maxHeaderCount {
            throw .headersTooLarge("The request has \(request.headers.count) header lines; the gateway's limit is \(limits.maxHeaderCount).")
        }
        if headerBytes > limits.maxHeaderBytes {
            throw .headersTooLarge("The request's headers hold \(headerBytes) bytes; the gateway's limit is \(limits.maxHeaderBytes).")
        }
        if request.target.utf8.count > limits.maxURIBytes { throw .uriTooLong(limit: limits.maxURIBytes) }

        if hosts > 1 { throw .badHost("The request has \(hosts) Host headers; send exactly one (RFC 9112 §3.2).") }
        if let host {
            guard isAuthority(Substring(host)) else {
                throw .badHost("The Host header is not a host name or address with an optional port.")
            }
            exchange.host = Substring(host)
        } else if !http10 {
            throw .badHost("The request has no Host header; HTTP/1.1 requires exactly one (RFC 9112 §3.2).")
        }

        try splitTarget(exchange)

        if let transferEncoding {
            let codings = HeaderName.tokens(transferEncoding)
            guard codings.last == Array("chunked".utf8) else {
                throw .badRequest("Transfer-Encoding must end with chunked in a request, or its length is unknown (RFC 9112 §6.1).")
            }
            guard codings.count == 1 else {
                throw ProblemDetails(
                    slug: "unsupported-transfer-coding", status: .notImplemented, title: "Transfer coding not supported",
                    detail: "The gateway accepts only Transfer-Encoding: chunked, not \(transferEncoding).",
                    closesConnection: true)
            }
            exchange.body = .chunked
        } else if let contentLength, let length = Int(contentLength), length > 0 {
            exchange.body = .length(length)
            if length > limits.maxRequestBodyBytes { throw .bodyTooLarge(limit: limits.maxRequestBodyBytes) }
        }
        if let expect {
            guard HeaderName.tokens(expect) == [Array("100-continue".utf8)] else { throw .expectationFailed(expect) }
            // An HTTP/1.0 client cannot wait for 100 Continue (RFC 9110 §10.1.1).
            exchange.expectsContinue = !http10 && exchange.body != .none
        }
        guard isPlainPath(exchange.path) else { throw .badPath(exchange.path) }
    }

    /// Sets the routed path and the query from an origin-form target, or from an
    /// absolute-form one that names the `Host` sent.
    private static func splitTarget(_ exchange: Exchange) throws(ProblemDetails) {
        var target = Substring(exchange.request.target)
        if target.utf8.contains(UInt8(ascii: "#")) {
            throw .badTarget("The request target has a fragment (#); fragments are never sent to a server.")
        }
        if target.first != "/" {
            guard let schemeEnd = target.range(of: "://"),
                ["http", "https"].contains(target[..<schemeEnd.lowerBound].lowercased())
            else {
                throw .badTarget("The request target must be a path, such as /pan/v3/pancr/certificate.")
            }
            let afterScheme = target[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
            let authority = afterScheme[..<authorityEnd]
            if let host = exchange.host {
                guard authority.lowercased() == host.lowercased() else {
                    throw .badTarget("The request target names \(authority), but Host is \(host): the gateway is not a forward proxy.")
                }
            } else {
                guard isAuthority(authority) else { throw .badTarget("The request target's authority is malformed.") }
                exchange.host = authority
            }
            target = afterScheme[authorityEnd...]
            if target.isEmpty || target.first == "?" {
                // An absolute-form target with an empty path means the root (RFC 9112 §3.2.2).
                exchange.path = "/"
                exchange.query = target.isEmpty ? nil : target.dropFirst()
                return
            }
        }
        if let queryStart = target.firstIndex(of: "?") {
            exchange.path = target[..<queryStart]
            exchange.query = target[target.index(after: queryStart)...]
        } else {
            exchange.path = target
        }
    }

    /// Whether a `Host` value is a host (a name, IPv4 address or bracketed IPv6 address)
    /// with an optional port (RFC 3986 §3.2.2–3).
    static func isAuthority(_ value: Substring) -> Bool {
        var bytes = value.utf8[...]
        guard !bytes.isEmpty else { return false }
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ ASCIIBytes.isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
                return false
            }
            bytes = bytes[bytes.index(after: close)...]
        } else {
            let nameEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
            let name = bytes[..<nameEnd]
            // RFC 3986's unreserved bytes, all a host name needs: the sub-delims and the
            // percent-encoding that reg-name also allows name no host the gateway serves.
            guard !name.isEmpty, name.count <= 255, name.allSatisfy({ ASCIIBytes.isLetterOrDigit($0, or: "-._~") }) else { return false }
            bytes = bytes[nameEnd...]
        }
        guard let colon = bytes.first else { return true }
        guard colon == UInt8(ascii: ":") else { return false }
        let port = bytes.dropFirst()
        return port.count <= 5 && port.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Whether a path is free of `.`/`..` segments, `;` parameters, fragments' `#`, and of
    /// encoded `/`, `\`, `.` and NUL: each could make the upstream see a different resource
    /// than the one routed and authorized.
    static func isPlainPath(_ path: Substring) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.first == UInt8(ascii: "/") else { return false }
            var segmentStart = 0
            for index in 0...bytes.count {
                if index == bytes.count || bytes[index] == UInt8(ascii: "/") {
                    let length = index - segmentStart
                    if (length == 1 || length == 2) && bytes[segmentStart..<index].allSatisfy({ $0 == UInt8(ascii: ".") }) {
                        return false
                    }
                    segmentStart = index + 1
                    continue
                }
                switch bytes[index] {
                case UInt8(ascii: "\\"), UInt8(ascii: ";"), UInt8(ascii: "#"):
                    return false
                case UInt8(ascii: "%") where index + 2 < bytes.count:
                    let escaped = (bytes[index + 1], bytes[index + 2] | 0x20)
                    // %2f (/), %2e (.), %5c (\), %00 (NUL)
                    if escaped == (UInt8(ascii: "2"), UInt8(ascii: "f")) || escaped == (UInt8(ascii: "2"), UInt8(ascii: "e"))
                        || escaped == (UInt8(ascii: "5"), UInt8(ascii: "c")) || escaped == (UInt8(ascii: "0"), UInt8(ascii: "0"))
                    {
                        return false
                    }
                default:
                    break
                }
            }
            return true
        }
    }
}
