import NIOHTTP1

/// Step 9 of the pipeline: what the upstream is sent for an admitted request, and what
/// the client is sent of the upstream's answer. The transport carries both.
///
/// Going up, the request loses the hop-by-hop headers (RFC 9110 §7.6.1) and those its
/// `Connection` names, the caller's credentials, `Authorization`, `Cookie`, `Expect` (the
/// gateway answers `100-continue` itself) and every identity header a client could forge
/// (`X-Setu-*`, `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `X-Request-ID`); the gateway's own
/// are set in their place, never appended to the client's. Header names with `_` are not
/// passed on either, as nginx does by default: CGI, WSGI and PHP read `X_Setu_Consumer` as
/// `X-Setu-Consumer`, so one could forge what the gateway strips. Coming down, the answer loses
/// the hop-by-hop headers and those its `Connection` names. `Content-Length` and
/// `Transfer-Encoding` are never copied either way: the gateway frames each message itself.
enum ProxyStage {
    /// Header names dropped from a request on its way up.
    static let droppedGoingUp = HeaderNameSet([
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length", "expect", "x-apisetu-clientid", "x-apisetu-apikey",
        "authorization", "cookie", "forwarded", "x-real-ip", "x-request-id",
    ])

    /// Header names dropped from an answer on its way down.
    static let droppedGoingDown = HeaderNameSet([
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length", "x-request-id",
    ])

    /// The request head for the upstream.
    /// - Parameter bodyLength: the body's length when known (read whole, or declared by the
    ///   client); nil when it is streamed chunked.
    static func upstreamHead(_ exchange: Exchange, to upstream: UpstreamTarget, bodyLength: Int?) -> HTTPRequestHead {
        var uri = upstream.pathPrefix
        uri += exchange.rest.isEmpty && upstream.pathPrefix.isEmpty ? "/" : exchange.rest
        if let query = exchange.query {
            uri += "?"
            uri += query
        }
        let incoming = exchange.request.headers
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 10)
        headers.add(name: "Host", value: upstream.hostHeader)
        let listed = listedInConnection(incoming)
        for (name, value) in incoming where !isDroppedGoingUp(name) {
            if !listed.isEmpty && HeaderName.isOne(of: listed, name) { continue }
            headers.add(name: name, value: value)
        }
        if let consumer = exchange.consumer { headers.add(name: "X-Setu-Consumer", value: consumer) }
        if let entitlement = exchange.entitlement {
            headers.add(name: "X-Setu-Subscription", value: entitlement.consumer + "/" + entitlement.subscription)
        }
        headers.add(name: "X-Request-ID", value: exchange.requestId)
        let clientIP = exchange.request.clientIP ?? "unknown"
        var forwarded = "for=" + forwardedNode(exchange.request.clientIP)
        if let host = exchange.host { forwarded += ";host=\"" + host + "\"" }
        forwarded += ";proto=http"
        headers.add(name: "Forwarded", value: forwarded)
        headers.add(name: "X-Forwarded-For", value: clientIP)
        if let host = exchange.host { headers.add(name: "X-Forwarded-Host", value: String(host)) }
        headers.add(name: "X-Forwarded-Proto", value: "http")
        headers.add(name: "X-Real-IP", value: clientIP)
        if let bodyLength {
            if bodyLength > 0 || exchange.request.method.expectsBody { headers.add(name: "Content-Length", value: String(bodyLength)) }
        } else {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        return HTTPRequestHead(version: .http1_1, method: exchange.request.method, uri: uri, headers: headers)
    }

    /// How an answer's body is framed for the client.
    enum ResponseFraming: Equatable {
        /// No body may follow (a `HEAD` request, 1xx, 204, 304).
        case none
        /// `Content-Length`.
        case length
        /// Chunked: HTTP/1.1 clients when the length is unknown.
        case chunked
        /// Ended by closing the connection: HTTP/1.0 clients when the length is unknown.
        case untilClose
    }

    /// The head the client is sent for the upstream's answer, and how its body is framed.
    /// - Parameter keepAlive: whether the client's connection stays open afterwards.
    static func clientHead(
        _ upstream: HTTPResponseHead, exchange: Exchange,
        keepAlive: Bool
    ) -> (head: HTTPResponseHead, framing: ResponseFraming) {
        let status = upstream.status.code
        let noBody = exchange.request.method == .HEAD || status < 200 || status == 204 || status == 304
        var length: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstream.headers.count + 4)
        let listed = listedInConnection(upstream.headers)
        let limited = !exchange.responseHeaders.isEmpty
        for (name, value) in upstream.headers {
            if name.utf8.count == 14 && HeaderName.equals(name, "content-length") { length = value }
            if isDroppedGoingDown(name) { continue }
            if !listed.isEmpty && HeaderName.isOne(of: listed, name) { continue }
            // The plan's limits are the gateway's to state; an upstream's own would contradict them.
            if limited && (HeaderName.equals(name, "ratelimit") || HeaderName.equals(name, "ratelimit-policy")) { continue }
            headers.add(name: name, value: value)
        }
        headers.add(name: "X-Request-ID", value: exchange.requestId)
        for (name, value) in exchange.responseHeaders { headers.add(name: name, value: value) }
        let framing: ResponseFraming
        let client = exchange.request.version
        if noBody {
            // The length of what a GET would get, which HEAD and 304 may tell.
            if let length, status != 204 && status >= 200 { headers.add(name: "Content-Length", value: length) }
            framing = .none
        } else if let length {
            headers.add(name: "Content-Length", value: length)
            framing = .length
        } else if client.major > 1 || (client.major == 1 && client.minor >= 1) {
            headers.add(name: "Transfer-Encoding", value: "chunked")
            framing = .chunked
        } else {
            framing = .untilClose
        }
        let staysOpen = keepAlive && framing != .untilClose
        addConnection(&headers, keepAlive: staysOpen, client: client)
        return (HTTPResponseHead(version: client, status: upstream.status, headers: headers), framing)
    }

    /// `Connection: close` when the connection ends after this answer, and `keep-alive` for an
    /// HTTP/1.0 client whose connection stays open.
    static func addConnection(_ headers: inout HTTPHeaders, keepAlive: Bool, client: HTTPVersion) {
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if client.major == 1 && client.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
    }

    static func isDroppedGoingUp(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            droppedGoingUp.contains(bytes) || HeaderName.hasPrefix(bytes, "x-setu-") || HeaderName.hasPrefix(bytes, "x-forwarded-")
                || bytes.contains(UInt8(ascii: "_"))
        }
    }

    static func isDroppedGoingDown(_ name: String) -> Bool {
        droppedGoingDown.contains(name)
    }

    /// The header names a message's `Connection` header lists, other than `close` and
    /// `keep-alive` (which name no header), lowercase.
    static func listedInConnection(_ headers: HTTPHeaders) -> [[UInt8]] {
        var listed: [[UInt8]] = []
        for (name, value) in headers where name.utf8.count == 10 && HeaderName.equals(name, "connection") {
            for token in HeaderName.tokens(value) where token != close && token != keepAlive {
                listed.append(token)
            }
        }
        return listed
    }

    private static let close = Array("close".utf8)
    private static let keepAlive = Array("keep-alive".utf8)

    /// RFC 7239 node: IPv6 addresses quoted in brackets.
    static func forwardedNode(_ ip: String?) -> String {
        guard let ip else { return "unknown" }
        return ip.utf8.contains(UInt8(ascii: ":")) ? "\"[" + ip + "]\"" : ip
    }
}

extension HTTPMethod {
    /// Methods whose requests carry a body as a rule: a body-less one is sent with
    /// `Content-Length: 0`, as some servers require.
    var expectsBody: Bool {
        switch self {
        case .POST, .PUT, .PATCH: return true
        default: return false
        }
    }
}
