import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import SetuEntitlements
import SetuHits
import Synchronization

/// How the gateway treats requests, parsed once at the edge.
public struct GatewayConfiguration: Sendable {
    /// Requests with a bigger body are refused with 413.
    public var maxRequestBodyBytes: Int
    /// How long to wait for a connection to an upstream.
    public var connectTimeoutMilliseconds: Int
    /// Connections kept open to each upstream host.
    public var connectionsPerUpstream: Int
    /// Upstream answers up to this size (by `Content-Length`) are read whole and sent in
    /// one write; bigger ones, and those of unknown length, are streamed.
    public var bufferedResponseBytes: Int

    /// - Parameters:
    ///   - maxRequestBodyBytes: 10 MiB unless given.
    ///   - connectTimeoutMilliseconds: 5 s unless given.
    ///   - connectionsPerUpstream: 64 unless given.
    ///   - bufferedResponseBytes: 64 KiB unless given.
    public init(maxRequestBodyBytes: Int = 10 << 20, connectTimeoutMilliseconds: Int = 5000, connectionsPerUpstream: Int = 64,
                bufferedResponseBytes: Int = 64 << 10) {
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.connectionsPerUpstream = connectionsPerUpstream
        self.bufferedResponseBytes = bufferedResponseBytes
    }
}

/// The request context of the gateway's listener: Hummingbird's, plus the client's address.
public struct GatewayRequestContext: RequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The address the connection came from.
    public let remoteAddress: SocketAddress?

    /// Made by Hummingbird for each request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The gateway: routes, authenticates, authorizes and proxies each request against the
/// routing table in force, and records every request in the hit log and the metrics.
///
/// The table is swapped whole by `install`; a request reads it once at its start, so it
/// finishes on the revision it began with.
public final class Gateway: HTTPResponder, Sendable {
    /// The gateway listener's request context.
    public typealias Context = GatewayRequestContext

    /// How requests are treated.
    public let configuration: GatewayConfiguration
    private let table = Mutex<RoutingTable?>(nil)
    private let client: HTTPClient
    private let hits: HitLog
    private let metrics: GatewayMetrics

    /// - Parameters:
    ///   - hits: where every request is recorded.
    ///   - metrics: where requests are counted.
    public init(configuration: GatewayConfiguration = .init(), hits: HitLog, metrics: GatewayMetrics) {
        self.configuration = configuration
        self.hits = hits
        self.metrics = metrics
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(configuration.connectTimeoutMilliseconds))),
            decompression: .disabled
        )
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60),
                                                   concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.connectionsPerUpstream)
        // Requests are traced by the hit log; AsyncHTTPClient's own spans cost a few
        // percent of each request with no tracer to send them to.
        clientConfiguration.tracing.tracer = nil
        client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
                            configuration: clientConfiguration)
    }

    /// Serves `snapshot` from the next request on.
    public func install(_ snapshot: GatewaySnapshot) {
        let compiled = RoutingTable(snapshot)
        table.withLock { $0 = compiled }
    }

    /// The revision being served, if any.
    public var revision: String? {
        table.withLock { $0?.snapshot.revision }
    }

    /// Closes the upstream connections; call once the listener has stopped.
    public func shutdown() async throws {
        try await client.shutdown()
    }

    /// Runs the pipeline for one request and answers it; every request, refused or not,
    /// is recorded in the hit log and the metrics. Never throws: refusals are answers.
    public func respond(to request: Request, context: GatewayRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let target = request.head.path ?? "/"
        let queryStart = target.firstIndex(of: "?")
        let path = target[..<(queryStart ?? target.endIndex)]
        let query = queryStart.map { target[target.index(after: $0)...] }
        let requestId = Self.requestId(request.headers[.requestID])
        let table = table.withLock { $0 }
        var hit = HitRecord(timestampMilliseconds: HitLog.nowMilliseconds(), requestId: requestId,
                            configRevision: table?.snapshot.revision ?? "", method: request.method.rawValue,
                            path: String(path), clientIP: context.remoteAddress?.ipAddress ?? "")
        do {
            guard let table else { throw Problem.notReady() }
            let admission = try admit(request, path: path, table: table, hit: &hit)
            return await proxy(request, admission: admission, query: query, requestId: requestId,
                               clientAddress: context.remoteAddress, hit: hit, started: started)
        } catch let problem as Problem {
            hit.status = Int(problem.status.code)
            hit.decision = "deny:" + problem.slug
            record(hit, started: started)
            return problem.response(requestId: requestId)
        }
    }

    /// What the checks decided for an admitted request.
    struct Admission {
        let route: CompiledRoute
        let rest: Substring
        let consumer: String
        let entitlement: Entitlement
    }

    /// Steps 2–4 of the pipeline: route, authenticate, authorize. Throws the refusal.
    func admit(_ request: Request, path: Substring, table: RoutingTable, hit: inout HitRecord) throws -> Admission {
        guard Self.isPlainPath(path) else {
            throw Problem(slug: "bad-path", status: .badRequest, title: "Bad path",
                          detail: "The path \(path) has dot segments or encoded slashes or dots, which the gateway does not pass on.")
        }
        guard let (route, rest) = table.route(for: path) else {
            if let listing = table.listing(for: path) { throw Problem.listing(listing) }
            throw Problem.noRoute(path)
        }
        let api = route.route.api
        hit.api = api
        hit.publisher = route.route.publisher
        hit.category = route.route.category.rawValue
        let method = request.method.rawValue
        var operation: CompiledOperation?
        let operationPath = rest.isEmpty ? "/" : rest
        switch route.match(method: method, path: operationPath) {
        case .undescribed: break
        case .operation(let matched):
            operation = matched
            hit.operation = matched.operationId
        case .methodNotAllowed(let allowed):
            throw Problem.methodNotAllowed(api: api, method: method, path: operationPath, allowed: allowed)
        case .noOperation:
            throw Problem.noOperation(api: api, method: method, path: operationPath)
        }

        guard let clientId = request.headers[.clientID], let key = request.headers[.apiKey],
              !clientId.isEmpty, !key.isEmpty else { throw Problem.missingCredentials() }
        guard let credential = table.credentials[clientId], credential.accepts(key: Substring(key)) else {
            throw Problem.invalidCredentials()
        }
        let consumer = credential.credential.consumer
        hit.clientId = clientId
        hit.consumer = consumer
        // Judged by the day the request arrived, from the clock read once for the hit.
        let today = hit.timestampMilliseconds / 86_400_000
        if let lastDay = credential.lastDay, today > lastDay {
            throw Problem.credentialExpired(clientId: clientId, day: credential.credential.notAfter ?? "")
        }
        if let firstDay = credential.firstDay, today < firstDay {
            throw Problem.credentialNotYetValid(clientId: clientId, day: credential.credential.notBefore ?? "")
        }

        guard let granted = table.active[consumer]?[api] else {
            if let inactive = table.snapshot.inactive[consumer]?[api] { throw Problem.inactive(inactive) }
            throw Problem.notSubscribed(consumer: consumer, api: api)
        }
        if let lastDay = granted.lastDay, today > lastDay { throw Problem.expired(granted.entitlement) }
        if let allowed = granted.operations {
            let name = operation?.name ?? "\(method) \(operationPath)"
            guard let operationId = operation?.operationId, allowed.contains(operationId) else {
                throw Problem.operationNotSubscribed(granted.entitlement, operation: name)
            }
        }
        return Admission(route: route, rest: rest, consumer: consumer, entitlement: granted.entitlement)
    }

    /// Step 6: passes the request to the upstream and streams its answer back.
    private func proxy(_ request: Request, admission: Admission, query: Substring?, requestId: String,
                       clientAddress: SocketAddress?, hit: HitRecord, started: ContinuousClock.Instant) async -> Response {
        var hit = hit
        let route = admission.route.route
        var upstreamURL = route.upstreamURL
        if upstreamURL.hasSuffix("/") { upstreamURL.removeLast() }
        upstreamURL += admission.rest
        if let query { upstreamURL += "?" + query }
        var outbound = HTTPClientRequest(url: upstreamURL)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers = Self.forwardedHeaders(request.headers, host: request.head.authority, admission: admission,
                                                 requestId: requestId, clientAddress: clientAddress)
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        let received = BodyCounter(limit: configuration.maxRequestBodyBytes)
        if let declaredLength, declaredLength > configuration.maxRequestBodyBytes {
            return refuse(Problem.bodyTooLarge(limit: configuration.maxRequestBodyBytes), hit: hit, requestId: requestId, started: started)
        }
        if (declaredLength ?? 0) > 0 || request.headers[.transferEncoding] != nil {
            outbound.body = .stream(CountedBody(base: request.body, counter: received),
                                    length: declaredLength.map { .known(Int64($0)) } ?? .unknown)
        }

        let upstreamStarted = ContinuousClock.now
        let answer: HTTPClientResponse
        do {
            answer = try await client.execute(outbound, deadline: .now() + .milliseconds(Int64(route.timeoutMilliseconds)))
        } catch {
            hit.bytesIn = received.count
            hit.upstreamMilliseconds = Self.milliseconds(since: upstreamStarted)
            return refuse(upstreamProblem(error, route: route, received: received), hit: hit, requestId: requestId, started: started)
        }

        var headers = HTTPFields()
        headers.reserveCapacity(answer.headers.count + 1)
        // `Connection: keep-alive` or `close`, the common answers, name no other header.
        let connection = answer.headers["connection"].filter { !["keep-alive", "close"].contains($0.lowercased()) }
        let dropped = Self.connectionListed(connection.joined(separator: ","))
        for (name, value) in answer.headers {
            guard let field = HTTPField.Name(name) else { continue }
            let canonical = field.canonicalName
            guard !Self.hopByHop.contains(canonical), dropped.isEmpty || !dropped.contains(canonical) else { continue }
            headers.append(HTTPField(name: field, value: value))
        }
        headers[.requestID] = requestId
        hit.status = Int(answer.status.code)
        hit.decision = "allow"
        let status = HTTPResponse.Status(code: Int(answer.status.code), reasonPhrase: answer.status.reasonPhrase)
        if let length = answer.headers.first(name: "content-length").flatMap(Int.init),
           length <= configuration.bufferedResponseBytes {
            // A small answer is read whole and sent in one write with its head, as nginx
            // buffers by default: one system call instead of one per part.
            do {
                let whole = try await answer.body.collect(upTo: length)
                hit.bytesIn = received.count
                hit.bytesOut = whole.readableBytes
                hit.upstreamMilliseconds = Self.milliseconds(since: upstreamStarted)
                record(hit, started: started)
                return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: whole))
            } catch {
                hit.upstreamMilliseconds = Self.milliseconds(since: upstreamStarted)
                return refuse(upstreamProblem(error, route: route, received: received), hit: hit, requestId: requestId, started: started)
            }
        }
        let finisher = HitFinisher(gateway: self, hit: hit, started: started, upstreamStarted: upstreamStarted, received: received)
        let body = answer.body
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody { writer in
                var sent = 0
                defer { finisher.finish(bytesOut: sent) }
                for try await chunk in body {
                    sent += chunk.readableBytes
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            }
        )
    }

    /// What a failed upstream exchange tells the client: the body was too large, the
    /// upstream was too slow, or it could not be reached.
    private func upstreamProblem(_ error: Error, route: GatewaySnapshot.Route, received: BodyCounter) -> Problem {
        if received.exceeded { return .bodyTooLarge(limit: configuration.maxRequestBodyBytes) }
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout {
            return .upstreamTimeout(api: route.api, milliseconds: route.timeoutMilliseconds)
        }
        return .upstreamUnreachable(api: route.api, reason: Self.describe(error))
    }

    private func refuse(_ problem: Problem, hit: HitRecord, requestId: String, started: ContinuousClock.Instant) -> Response {
        var hit = hit
        hit.status = Int(problem.status.code)
        hit.decision = "deny:" + problem.slug
        record(hit, started: started)
        return problem.response(requestId: requestId)
    }

    /// Completes a hit's timing and hands it to the log and the metrics.
    func record(_ hit: HitRecord, started: ContinuousClock.Instant) {
        var hit = hit
        hit.latencyMilliseconds = Self.milliseconds(since: started)
        hits.record(hit)
        metrics.request(api: hit.api ?? "-", status: hit.status, decision: hit.decision,
                        seconds: hit.latencyMilliseconds / 1000)
    }

    // MARK: Headers

    /// Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    ]

    /// The client's headers as the upstream sees them: without hop-by-hop headers, the
    /// caller's credentials or any `X-Setu-*` the caller sent, with the gateway's own added.
    static func forwardedHeaders(_ fields: HTTPFields, host: String?, admission: Admission, requestId: String,
                                 clientAddress: SocketAddress?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let dropped = connectionListed(fields[.connection])
        for field in fields {
            let name = field.name.canonicalName
            if name == "host" { continue }
            if hopByHop.contains(name) || dropped.contains(name) || name.hasPrefix("x-setu-") { continue }
            switch name {
            case "x-apisetu-clientid", "x-apisetu-apikey", "authorization", "cookie", "forwarded",
                 "x-request-id", "content-length":
                continue
            default:
                headers.add(name: field.name.rawName, value: field.value)
            }
        }
        headers.add(name: "X-Setu-Consumer", value: admission.consumer)
        headers.add(name: "X-Setu-Subscription", value: "\(admission.entitlement.consumer)/\(admission.entitlement.subscription)")
        headers.add(name: "X-Request-ID", value: requestId)
        var forwarded = "for=" + forwardedNode(clientAddress)
        if let host, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:[]".contains($0) }) {
            forwarded += ";host=\"\(host)\""
        }
        forwarded += ";proto=http"
        headers.add(name: "Forwarded", value: forwarded)
        return headers
    }

    /// The names a `Connection` header lists, lowercased.
    static func connectionListed(_ value: String?) -> Set<String> {
        guard let value, !value.isEmpty else { return [] }
        var names = Set<String>()
        for piece in value.split(separator: ",") {
            let name = piece.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()
            if !name.isEmpty { names.insert(String(name).lowercased()) }
        }
        return names
    }

    /// RFC 7239 node: IPv6 addresses quoted in brackets.
    static func forwardedNode(_ address: SocketAddress?) -> String {
        guard let ip = address?.ipAddress else { return "unknown" }
        return ip.contains(":") ? "\"[\(ip)]\"" : ip
    }

    // MARK: Small pieces

    /// The client's request id when it is 1–128 characters of letters, digits and `-_.:`;
    /// otherwise a new random one.
    static func requestId(_ sent: String?) -> String {
        if let sent, (1...128).contains(sent.utf8.count),
           sent.utf8.allSatisfy({ byte in
               (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                   || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-_.:".utf8.contains(byte)
           }) {
            return sent
        }
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        let hex = String(high, radix: 16) + String(low, radix: 16)
        return String(repeating: "0", count: max(0, 32 - hex.count)) + hex
    }

    /// Whether a path is free of `.`/`..` segments and of encoded `/`, `\` and `.`, which
    /// could make the upstream see a different resource than the one routed and authorized.
    static func isPlainPath(_ path: Substring) -> Bool {
        let bytes = Array(path.utf8)
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
            case UInt8(ascii: "\\"): return false
            case UInt8(ascii: "%") where index + 2 < bytes.count:
                let escaped = (bytes[index + 1], bytes[index + 2] | 0x20)
                // %2f (/), %2e (.), %5c (\)
                if escaped == (UInt8(ascii: "2"), UInt8(ascii: "f")) || escaped == (UInt8(ascii: "2"), UInt8(ascii: "e"))
                    || escaped == (UInt8(ascii: "5"), UInt8(ascii: "c")) {
                    return false
                }
            default: break
            }
        }
        return true
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the upstream closed the connection"
            default: return "\(error)"
            }
        }
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}

/// Finishes a proxied hit once its response body ends, or when the response is dropped
/// without its body being written (the client went away first), so no hit is lost.
final class HitFinisher: Sendable {
    private let state: Mutex<HitRecord?>
    private let gateway: Gateway
    private let started: ContinuousClock.Instant
    private let upstreamStarted: ContinuousClock.Instant
    private let received: BodyCounter

    init(gateway: Gateway, hit: HitRecord, started: ContinuousClock.Instant,
         upstreamStarted: ContinuousClock.Instant, received: BodyCounter) {
        self.gateway = gateway
        state = Mutex(hit)
        self.started = started
        self.upstreamStarted = upstreamStarted
        self.received = received
    }

    func finish(bytesOut: Int) {
        guard var hit = state.withLock({ hit in defer { hit = nil }; return hit }) else { return }
        hit.bytesOut = bytesOut
        hit.bytesIn = received.count
        hit.upstreamMilliseconds = Gateway.milliseconds(since: upstreamStarted)
        gateway.record(hit, started: started)
    }

    deinit {
        finish(bytesOut: 0)
    }
}

/// Counts request body bytes and stops the body at the limit.
final class BodyCounter: Sendable {
    let limit: Int
    private let total = Atomic<Int>(0)
    private let over = Atomic<Bool>(false)

    init(limit: Int) { self.limit = limit }

    var count: Int { total.load(ordering: .relaxed) }
    var exceeded: Bool { over.load(ordering: .relaxed) }

    func add(_ bytes: Int) throws {
        let now = total.add(bytes, ordering: .relaxed).newValue
        if now > limit {
            over.store(true, ordering: .relaxed)
            throw BodyTooLarge()
        }
    }

    struct BodyTooLarge: Error {}
}

/// The request body, counted on its way to the upstream.
struct CountedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let counter: BodyCounter

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let counter: BodyCounter

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            try counter.add(chunk.readableBytes)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), counter: counter)
    }
}
