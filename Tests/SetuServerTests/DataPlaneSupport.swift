import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SetuTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// An upstream on loopback that records every byte and request it receives and behaves as
/// the path below the API's base path says:
///
/// - `/early…`: answers 200 as soon as the head arrives, without reading the body;
///   `/early-close…` also closes the connection;
/// - `/noread…`: reads the head, then stops reading and never answers;
/// - `/silent…`: reads the request and never answers;
/// - `/stream/N`: answers N bytes in 64 KiB chunks, as fast as the connection takes them;
///   `/chunked/N` the same without a `Content-Length`;
/// - `/sleep/MS`: answers after MS milliseconds;
/// - `/truncate…`: sends a head promising 1,000 bytes, 10 of them, and closes;
/// - `/hop…`: answers with hop-by-hop headers and one its `Connection` names;
/// - `/status/N…`: answers status N (a HEAD request gets no body, as always);
/// - `/keepalive/N`: answers with `Keep-Alive: timeout=N`;
/// - anything else: answers 200 with `{"method":…,"uri":…,"bytes":N}` once the request ended.
///
/// With `tls`, it serves HTTPS with that context.
final class RawUpstream: @unchecked Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var version: String
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> [String] {
            headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var _bytes = 0
        private var _requests: [Request] = []
        private var _connections = 0
        private var _closed = 0
        private var _streamed = 0

        func received(_ count: Int) { lock.withLock { _bytes += count } }
        func request(_ request: Request) { lock.withLock { _requests.append(request) } }
        func opened() { lock.withLock { _connections += 1 } }
        func closed() { lock.withLock { _closed += 1 } }
        func streamed(_ count: Int) { lock.withLock { _streamed += count } }

        var bytes: Int { lock.withLock { _bytes } }
        var requests: [Request] { lock.withLock { _requests } }
        var connections: Int { lock.withLock { _connections } }
        var closedConnections: Int { lock.withLock { _closed } }
        var streamedBytes: Int { lock.withLock { _streamed } }
    }

    let port: Int
    let log: Log
    private let channel: any Channel

    init(tls: NIOSSLContext? = nil) throws {
        let log = Log()
        self.log = log
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.addHandler(ByteCounter(log: log))
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try pipeline.addHandler(Behaviour(log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    deinit {
        channel.close(promise: nil)
    }

    var requests: [Request] { log.requests }

    /// Counts what arrives, before any parsing, and the connections' lives.
    private final class ByteCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let log: Log
        init(log: Log) { self.log = log }

        func channelActive(context: ChannelHandlerContext) {
            log.opened()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            log.closed()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            log.received(unwrapInboundIn(data).readableBytes)
            context.fireChannelRead(data)
        }
    }

    private final class Behaviour: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let log: Log
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var answered = false
        var toStream = 0

        init(log: Log) { self.log = log }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
                answered = false
                let path = head.uri
                if path.hasPrefix("/early") {
                    answered = true
                    respond(context, status: .ok, body: "early", close: path.hasPrefix("/early-close"))
                } else if path.hasPrefix("/noread") {
                    record()
                    context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
                }
            case .body(var buffer):
                if body.count < 1 << 20 { body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
            case .end:
                guard let head, !answered else {
                    if head != nil && answered { record() }
                    return
                }
                record()
                let path = head.uri
                if path.hasPrefix("/silent") {
                    return
                } else if path.hasPrefix("/stream/") || path.hasPrefix("/chunked/") {
                    toStream = Int(path.split(separator: "/").last ?? "") ?? 0
                    var headers = HTTPHeaders([("Content-Type", "application/octet-stream")])
                    if path.hasPrefix("/stream/") { headers.add(name: "Content-Length", value: String(toStream)) }
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    pump(context)
                } else if path.hasPrefix("/sleep/") {
                    let milliseconds = Int64(path.dropFirst(7)) ?? 0
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
                        let (handler, context) = loopBound.value
                        handler.respond(context, status: .ok, body: "slept", close: false)
                    }
                } else if path.hasPrefix("/truncate") {
                    let headers = HTTPHeaders([("Content-Length", "1000")])
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0123456789"))))).assumeIsolated().whenComplete { _ in
                        context.close(promise: nil)
                    }
                } else if path.hasPrefix("/hop") {
                    let headers = HTTPHeaders([
                        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "hidden"), ("Keep-Alive", "timeout=30"),
                        ("Proxy-Authenticate", "Basic"), ("Trailer", "X-Sum"), ("Upgrade", "h2c"),
                        ("X-Kept", "yes"), ("Content-Length", "2"),
                    ])
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                } else if path.hasPrefix("/keepalive/") {
                    let headers = HTTPHeaders([("Keep-Alive", "timeout=\(path.dropFirst(11))"), ("Content-Length", "2")])
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ka")))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                } else if path.hasPrefix("/status/") {
                    let code = Int(path.dropFirst(8).prefix { $0.isNumber }) ?? 200
                    respond(context, status: HTTPResponseStatus(statusCode: code), body: "status", close: false)
                } else {
                    let json = #"{"method":"\#(head.method.rawValue)","uri":"\#(head.uri)","bytes":\#(body.count)}"#
                    respond(context, status: .ok, body: json, close: false)
                }
            }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable { pump(context) }
        }

        private func pump(_ context: ChannelHandlerContext) {
            guard toStream > 0 else { return }
            let chunk = ByteBuffer(repeating: UInt8(ascii: "s"), count: 64 << 10)
            while toStream > 0 && context.channel.isWritable {
                let size = min(toStream, chunk.readableBytes)
                toStream -= size
                log.streamed(size)
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))), promise: nil)
                if toStream == 0 { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
                context.flush()
            }
        }

        private func record() {
            guard let head else { return }
            log.request(
                Request(
                    method: head.method.rawValue, uri: head.uri, version: "\(head.version)",
                    headers: head.headers.map { ($0.name, $0.value) }, body: body))
        }

        func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, close: Bool) {
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count))])
            if close { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            if head?.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }
    }
}

/// A test certificate authority and a certificate it issued for `localhost` and
/// 127.0.0.1, made with the `openssl` command.
struct TestCertificates {
    let directory: TemporaryDirectory
    var caFile: String { directory.child("ca.pem") }
    var certificateFile: String { directory.child("server.pem") }
    var keyFile: String { directory.child("server.key") }

    init(names: String = "DNS:localhost,IP:127.0.0.1") throws {
        directory = TemporaryDirectory()
        let d = directory
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=Setu Test CA", "-keyout", d.child("ca.key"), "-out", d.child("ca.pem"),
        ])
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
            "-keyout", d.child("server.key"), "-out", d.child("server.csr"),
        ])
        try Data("subjectAltName=\(names)\n".utf8).write(to: URL(fileURLWithPath: d.child("san.ext")))
        try openssl([
            "x509", "-req", "-in", d.child("server.csr"), "-CA", d.child("ca.pem"), "-CAkey", d.child("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", d.child("san.ext"), "-out", d.child("server.pem"),
        ])
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try run("/usr/bin/env", ["openssl"] + arguments)
        guard result.status == 0 else { throw FixtureError("openssl \(arguments.first ?? "") failed: \(result.stderr)") }
    }

    func serverContext() throws -> NIOSSLContext {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Manifests the gateway tests' marketplaces share.
enum TestManifests {
    /// A platform that lets APIs call plain-HTTP upstreams on loopback.
    static func platform(_ name: String) -> String {
        """
        apiVersion: setu/v1
        kind: Platform
        metadata: {name: \(name)}
        spec:
          displayName: \(name.capitalized) tests
          admins: [{email: admin@setu.example}]
          verification: authors
          upstreams: {allowHTTP: true, allowLoopback: true}

        """
    }

    /// A publisher with one member and one approver.
    static func publisher(_ name: String, type: String = "service") -> String {
        """
        apiVersion: setu/v1
        kind: Publisher
        metadata: {name: \(name)}
        spec:
          displayName: \(name.uppercased())
          type: \(type)
          contact: {email: apis@\(name).example}
          members: [{email: dev@\(name).example}]
          approvers: [{email: approver@\(name).example}]

        """
    }

    /// An API on one plan; `extra` is further lines of its spec.
    static func api(
        _ name: String, basePath: String, upstream: String, timeout: String = "2s", plan: String,
        version: String = "1.0", extra: [String] = []
    ) -> String {
        """
        apiVersion: setu/v1
        kind: API
        metadata: {name: \(name)}
        spec:
          title: \(name.capitalized)
          summary: A test API.
          version: "\(version)"
          basePath: \(basePath)
          upstream: {url: "\(upstream)", timeout: \(timeout)}
          plans: [\(plan)]
        \(extra.map { "  " + $0 + "\n" }.joined())
        """
    }

    /// A subscription to `api` (`publisher/name`) on `plan`.
    static func subscription(_ name: String, api: String, plan: String) -> String {
        """
        apiVersion: setu/v1
        kind: Subscription
        metadata: {name: \(name)}
        spec: {api: \(api), plan: \(plan), purpose: Testing the gateway.}

        """
    }

    /// The offline consumer `tester`, with `DataPlaneMarketplace`'s credential.
    static var tester: String {
        """
        apiVersion: setu/v1
        kind: Consumer
        metadata: {name: tester}
        spec:
          type: offline
          displayName: Tester
          members: [{email: dev@tester.example}]
          credentials:
            - clientId: \(DataPlaneMarketplace.clientId)
              keySHA256: \(sha256Hex(DataPlaneMarketplace.key))

        """
    }
}

/// A marketplace for the data plane's tests: one service API, `/echo`, whose upstream is a
/// `RawUpstream` (and `/secure` for an HTTPS one, `/down` where nothing listens), without
/// OpenAPI operations so every method and path passes, and one subscribed consumer.
final class DataPlaneMarketplace: @unchecked Sendable {
    static let clientId = "tester-prod"
    static let key = "tester-key-0123456789"
    static var credentials: String { "X-APISETU-CLIENTID: \(clientId)\r\nX-APISETU-APIKEY: \(key)\r\n" }

    let fixture: GitFixture
    var path: String { fixture.path }

    init(upstreamPort: Int, secureURL: String? = nil, timeout: String = "2s") throws {
        fixture = try GitFixture()
        let admin = "Admin <admin@setu.example>"
        try fixture.write("policies/platform.yaml", TestManifests.platform("data-plane"))
        try fixture.write(
            "policies/plans.yaml",
            """
            apiVersion: setu/v1
            kind: Plan
            metadata: {name: standard}
            spec:
              displayName: Standard
              rateLimit: {requests: 1000000, per: second}

            """)
        try fixture.write("catalog/lab/publisher.yaml", TestManifests.publisher("lab"))
        var apis = [("echo", "/echo", "http://127.0.0.1:\(upstreamPort)"), ("down", "/down", "http://127.0.0.1:1/x")]
        if let secureURL { apis.append(("secure", "/secure", secureURL)) }
        for (name, basePath, url) in apis {
            try fixture.write(
                "catalog/lab/\(name).yaml",
                TestManifests.api(
                    name, basePath: basePath, upstream: url, timeout: timeout,
                    plan: "standard"))
            try fixture.write("subscriptions/tester/\(name).yaml", TestManifests.subscription(name, api: "lab/\(name)", plan: "standard"))
        }
        try fixture.write("subscriptions/tester/consumer.yaml", TestManifests.tester)
        try fixture.commitAll("The data plane's marketplace", author: admin)
    }
}

/// A client speaking raw bytes over a blocking socket, to send what no HTTP library
/// would and to see exactly what comes back.
final class RawClient {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private(set) var closed = false

    /// Connects, giving up after `timeout` seconds.
    init(port: Int, timeout: Double = 10) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Glibc.close(descriptor)
            throw FixtureError("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close()
    }

    /// Closes the connection.
    func close() {
        guard !closedHere else { return }
        closedHere = true
        Glibc.close(descriptor)
    }

    private var closedHere = false

    /// Sends bytes; false once the connection is gone.
    @discardableResult
    func send(_ text: String) -> Bool {
        send(Array(text.utf8))
    }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Sends as much of `bytes` as the connection takes within `seconds`; returns how many.
    func sendWithin(_ seconds: Double, _ bytes: [UInt8]) -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var offset = 0
        while offset < bytes.count && Date() < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent < 0 { if errno == EAGAIN { continue } else { break } }
            offset += sent
        }
        return offset
    }

    /// Reads what arrives within `seconds`, or until the peer closes.
    private func fill(until deadline: Date, wanted: (inout [UInt8]) -> Bool) {
        while !wanted(&buffer) && !closed {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                closed = true
                return
            }
            buffer += chunk[..<count]
        }
    }

    /// Whether the peer closes the connection within `seconds`; what arrived before is kept.
    func closesWithin(_ seconds: Double) -> Bool {
        fill(until: Date().addingTimeInterval(seconds)) { _ in false }
        return closed
    }

    /// Everything received so far (and within `seconds`), as text.
    func received(within seconds: Double = 0) -> String {
        if seconds > 0 { fill(until: Date().addingTimeInterval(seconds)) { _ in false } }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Reads one response; nil when none arrives whole within `seconds`.
    func response(within seconds: Double = 10, head: Bool = false) -> RawAnswer? {
        let deadline = Date().addingTimeInterval(seconds)
        var answer: RawAnswer?
        fill(until: deadline) { buffer in
            answer = RawAnswer.parse(&buffer, headRequest: head, closed: false)
            return answer != nil
        }
        if answer == nil && closed { answer = RawAnswer.parse(&buffer, headRequest: head, closed: true) }
        return answer
    }

    /// Reads and counts body bytes of a response in progress, up to `bytes`.
    func drain(_ bytes: Int, within seconds: Double) -> Int {
        var total = min(buffer.count, bytes)
        buffer.removeFirst(total)
        let deadline = Date().addingTimeInterval(seconds)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while total < bytes && Date() < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) > 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { closed = true; break }
            total += count
        }
        return total
    }
}

/// A response read from raw bytes.
struct RawAnswer {
    var version: String
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    var problemType: String? {
        ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any])?["type"] as? String
    }

    var detail: String {
        ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any])?["detail"] as? String ?? ""
    }

    /// Takes one whole response off the front of `buffer`.
    static func parse(_ buffer: inout [UInt8], headRequest: Bool, closed: Bool) -> RawAnswer? {
        guard let headEnd = find([13, 10, 13, 10], in: buffer, from: 0) else { return nil }
        let headText = String(decoding: buffer[..<headEnd], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var answer = RawAnswer(version: String(statusLine[0]), status: status, headers: headers, body: [])
        let bodyStart = headEnd + 4
        if headRequest || status < 200 || status == 204 || status == 304 {
            buffer.removeFirst(bodyStart)
            return answer
        }
        if let length = answer.header("content-length").first.flatMap(Int.init) {
            guard buffer.count >= bodyStart + length else { return nil }
            answer.body = Array(buffer[bodyStart..<bodyStart + length])
            buffer.removeFirst(bodyStart + length)
            return answer
        }
        if answer.header("transfer-encoding").first?.lowercased() == "chunked" {
            var position = bodyStart
            var body: [UInt8] = []
            while true {
                guard let lineEnd = find([13, 10], in: buffer, from: position),
                    let size = Int(String(decoding: buffer[position..<lineEnd], as: UTF8.self), radix: 16)
                else { return nil }
                let dataStart = lineEnd + 2
                if size == 0 {
                    guard buffer.count >= dataStart + 2 else { return nil }
                    answer.body = body
                    buffer.removeFirst(dataStart + 2)
                    return answer
                }
                guard buffer.count >= dataStart + size + 2 else { return nil }
                body += buffer[dataStart..<dataStart + size]
                position = dataStart + size + 2
            }
        }
        guard closed else { return nil }
        answer.body = Array(buffer[bodyStart...])
        buffer.removeAll()
        return answer
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        for index in start...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<index + needle.count]) == needle { return index }
        }
        return nil
    }
}

/// A listening socket on loopback that never accepts: once its backlog is full, connecting
/// to it waits until the connecting side gives up.
final class Blackhole {
    let port: Int
    private let descriptor: Int32
    private var fillers: [RawClient] = []

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> Int32 in
                guard bind(descriptor, address, length) == 0, listen(descriptor, 0) == 0 else { return -1 }
                return getsockname(descriptor, address, &length)
            }
        }
        guard bound == 0 else { throw FixtureError("cannot listen: \(String(cString: strerror(errno)))") }
        port = Int(UInt16(bigEndian: address.sin_port))
        // The backlog of 0 holds one connection; a few more fill whatever the kernel adds.
        for _ in 0..<4 { if let filler = try? RawClient(port: port, timeout: 0.5) { fillers.append(filler) } }
    }

    deinit {
        Glibc.close(descriptor)
    }
}

/// The resident memory of a process, in bytes.
func residentBytes(of pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}
