import Logging
import NIOCore
import NIOHTTP1
import SetuHits

/// One client connection of the data plane: runs each request through the pipeline's
/// stages, carries admitted ones to an upstream connection of the same event loop, and
/// streams the answer back, with every step synchronous on the loop.
///
/// It answers one request at a time, so a connection is always in one of the phases
/// below; parts of pipelined requests that arrive meanwhile wait in order, and reads stop
/// only when many wait. (NIO's `HTTPServerPipelineHandler` stops reading for every
/// request, which costs two `epoll_ctl` calls per request.) Bytes flow with backpressure both
/// ways: reads from the client are held while the upstream cannot take more of the body,
/// and reads from the upstream are held while the client cannot take more of the answer
/// (swift-nio-examples' `GlueHandler`). Every request's hit is recorded exactly once: when
/// its answer is handed to the connection, or when the connection ends first.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the request in flight is.
    enum Phase: Equatable {
        /// Waiting for a request's head.
        case idle
        /// Admitted by the stages; its body, if any, is read into `body` up to the buffer size.
        case buffering
        /// Waiting for the shared store's answer about the plan's limits.
        case limiting
        /// Waiting for an upstream connection.
        case leasing
        /// The upstream has the request (or its head), and its answer is awaited or streaming.
        case proxying
        /// The answer is complete; what is left of the request body is read and dropped.
        case draining
        /// The connection is closing.
        case closing
    }

    /// What runs out when `deadline` passes.
    enum DeadlineKind {
        case none
        /// A new connection's first head, from the connection's start.
        case firstHead
        /// A keep-alive connection's wait for its next request.
        case idle
        /// A head that has begun to arrive.
        case head
        /// A pause in the request body.
        case body
        /// Getting an upstream connection.
        case connect
        /// The upstream's answer, or its acceptance of the body.
        case upstream
        /// A client that does not read the answer.
        case unreadAnswer
        /// Reading what is left of a body before closing.
        case drain
    }

    private let loop: GatewayLoop
    private let gateway: Gateway
    private let headGuard: RequestHeadGuard
    private var context: ChannelHandlerContext?
    private var clientIP: String?

    /// Its place in the loop's list of connections whose deadlines are checked.
    var sweepIndex = -1
    private(set) var deadline = NIODeadline.distantFuture
    private var deadlineKind = DeadlineKind.none

    private var phase = Phase.idle
    private var readPending = false

    /// What arrived for requests after the one in flight, handed over once it is answered.
    private enum Pipelined {
        case part(HTTPServerRequestPart)
        case error(HTTPParserError)
    }

    private var pipelined = CircularBuffer<Pipelined>(initialCapacity: 0)
    private var replaying = false
    /// Told to close after the request in flight: the daemon is shutting down.
    private var quiescing = false
    /// Waiting parts beyond which reading stops.
    private static let pipelineLimit = 64

    // The request in flight; reset between requests.
    private var exchange: Exchange?
    private var started = NIODeadline.distantPast
    private var keepAlive = true
    private var requestEnded = false
    private var continueSent = false
    private var body: ByteBuffer?
    private var bytesIn = 0
    private var lease: UpstreamLease?
    private var upstream: UpstreamConnection?
    private var upstreamStarted: NIODeadline?
    private var upstreamMilliseconds: Double?
    private var upstreamAnswer: HTTPResponseHead?
    private var requestSent = false
    private var retried = false
    private var answerStarted = false
    private var answerStatus = 0
    private var answerFraming = ProxyStage.ResponseFraming.length
    private var bytesOut = 0
    private var recorded = false
    /// Told to the shared store with a question, so an answer for an earlier request is known.
    private var generation = 0
    /// The body as the stages see it, kept while the shared store is asked.
    private var inspected: RequestBody?

    init(loop: GatewayLoop, headGuard: RequestHeadGuard) {
        self.loop = loop
        gateway = loop.gateway
        self.headGuard = headGuard
    }

    private var configuration: GatewayConfiguration { gateway.configuration }

    // MARK: Connection events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = context.channel.remoteAddress?.ipAddress
        headGuard.onHeadStarted = { [unowned self] in headStarted() }
        loop.register(self)
        setDeadline(.firstHead)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        loop.unregister(self)
        headGuard.onHeadStarted = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closing
        if exchange != nil && !recorded {
            record(status: answerStarted ? answerStatus : 499, decision: "error:client-closed")
        }
        releaseUpstream(reusable: false)
        loop.unregister(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard pipelined.isEmpty && canTake(.part(part)) else {
            if phase != .closing { pipelined.append(.part(part)) }
            return
        }
        take(part)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        keepAlive = false
        if phase == .idle && pipelined.isEmpty {
            phase = .closing
            context.close(promise: nil)
        }
    }

    private func take(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): receiveHead(head)
        case .body(let part): receiveBody(part)
        case .end: receiveEnd()
        }
    }

    /// Whether what arrived is for the request in flight (or for none), rather than for a
    /// later one that must wait.
    private func canTake(_ event: Pipelined) -> Bool {
        switch event {
        case .part(.head): return phase == .idle
        case .part: return true
        case .error: return phase == .idle || !requestEnded
        }
    }

    /// Hands over, in order, what waited while a request was in flight.
    private func replayPipelined() {
        guard !replaying else { return }
        replaying = true
        defer { replaying = false }
        while let event = pipelined.first, canTake(event), phase != .closing {
            pipelined.removeFirst()
            switch event {
            case .part(let part): take(part)
            case .error(let error): receiveParserError(error)
            }
        }
        if phase == .closing { pipelined.removeAll() }
        if pipelined.count < Self.pipelineLimit { resumeClientReads() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if phase == .proxying && !requestSent { upstream?.flush() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            upstream?.handler.resumeReading()
            if deadlineKind == .unreadAnswer { setDeadline(.upstream) }
        } else if answerStarted && upstream != nil {
            setDeadline(.unreadAnswer)
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if pipelined.count >= Self.pipelineLimit {
            readPending = true
            return
        }
        switch phase {
        case .leasing where !requestEnded, .limiting where !requestEnded:
            readPending = true
        case .proxying where !requestSent && upstream?.isWritable == false:
            readPending = true
            setDeadline(.upstream)
        default:
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            // A reset connection, or data after a parser error: nothing more can be said on it.
            context.close(promise: nil)
            return
        }
        guard pipelined.isEmpty && canTake(.error(parserError)) else {
            if phase != .closing { pipelined.append(.error(parserError)) }
            return
        }
        receiveParserError(parserError)
    }

    private func receiveParserError(_ parserError: HTTPParserError) {
        switch phase {
        case .idle:
            exchange = placeholderExchange()
            answer(Self.problem(for: parserError, requestLineBytes: headGuard.requestLineBytes, configuration: configuration))
        case .buffering, .limiting, .leasing, .proxying:
            answer(
                .badBody("The request body is not valid HTTP/1.1 framing (\(parserError)); send a Content-Length body, or chunks as RFC 9112 §7.1 frames them.")
            )
        case .draining, .closing:
            context?.close(promise: nil)
        }
    }

    // MARK: The request

    private func headStarted() {
        if phase == .idle && deadlineKind == .idle { setDeadline(.head) }
    }

    private func receiveHead(_ head: HTTPRequestHead) {
        guard phase == .idle else {
            context?.close(promise: nil)
            return
        }
        headGuard.headArrived()
        resetExchange()
        started = .now()
        keepAlive = head.isKeepAlive && !quiescing
        let request = GatewayRequest(
            method: head.method, target: head.uri, version: head.version, headers: head.headers,
            clientIP: clientIP, receivedMilliseconds: HitLog.nowMilliseconds())
        let exchange = Exchange(request: request, table: loop.table)
        do throws(ProblemDetails) {
            try RequestPipeline.admit(
                exchange, configuration: configuration, random: &loop.random,
                tokens: configuration.cachesConsentTokens ? loop.tokens : nil)
        } catch {
            self.exchange = exchange
            answer(error)
            return
        }
        self.exchange = exchange
        if exchange.portal {
            servePortal(exchange)
            return
        }
        phase = .buffering
        if exchange.body != .none {
            setDeadline(.body)
            if exchange.expectsContinue {
                continueSent = true
                context?.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                    promise: nil)
            }
        } else {
            setDeadline(.none)
        }
    }

    private func receiveBody(_ part: ByteBuffer) {
        bytesIn += part.readableBytes
        switch phase {
        case .buffering, .limiting, .leasing:
            guard bytesIn <= configuration.maxRequestBodyBytes else {
                answer(.bodyTooLarge(limit: configuration.maxRequestBodyBytes))
                return
            }
            let whole = exchange?.needsWholeBody ?? false
            if whole && bytesIn > configuration.maxInspectedBodyBytes {
                answer(.bodyTooLarge(limit: configuration.maxInspectedBodyBytes, checked: true))
                return
            }
            if body == nil {
                body = part
            } else {
                body!.writeImmutableBuffer(part)
            }
            setDeadline(phase == .leasing ? .connect : .body)
            // A body a stage must judge is read to its end first; others stream past the buffer.
            if phase == .buffering && !whole && bytesIn >= configuration.bufferedRequestBodyBytes { startProxy() }
        case .proxying:
            guard bytesIn <= configuration.maxRequestBodyBytes else {
                answer(.bodyTooLarge(limit: configuration.maxRequestBodyBytes))
                return
            }
            if let upstream, !requestSent {
                upstream.write(.body(.byteBuffer(part)))
                if deadlineKind == .body { setDeadline(.body) }
            }
        case .draining, .idle, .closing:
            break
        }
    }

    private func receiveEnd() {
        requestEnded = true
        switch phase {
        case .buffering:
            startProxy()
        case .proxying:
            if let upstream, !requestSent {
                upstream.write(.end(nil))
                upstream.flush()
                requestSent = true
                setDeadline(.upstream)
            }
        case .draining:
            finishExchange()
        case .idle, .limiting, .leasing, .closing:
            break
        }
    }

    // MARK: The upstream

    /// Runs the stages before the upstream, then leases an upstream connection; when the
    /// plan's limits are asked of the shared store, its answer comes first (`limitsAnswered`).
    private func startProxy() {
        guard let exchange, exchange.route != nil else { return }
        let inspected = RequestBody(requestEnded ? (body ?? ByteBuffer()) : nil)
        do throws(ProblemDetails) {
            let outcome = try RequestPipeline.release(
                exchange, body: inspected, ledger: gateway.ledger, loop: loop, requester: self, token: generation)
            if outcome == .asked {
                phase = .limiting
                self.inspected = inspected
                return
            }
        } catch {
            answer(error)
            return
        }
        leaseUpstream()
    }

    private func leaseUpstream() {
        guard let exchange, let route = exchange.route else { return }
        guard let target = route.upstream else {
            gateway.logger.error("the upstream URL of \(route.route.api) cannot be read: \(route.route.upstreamURL)")
            answer(.upstreamUnreachable(api: route.route.api))
            return
        }
        phase = .leasing
        setDeadline(.connect)
        switch loop.pool.lease(target, for: self) {
        case .ready(let connection): leaseGranted(connection)
        case .waiting(let lease): self.lease = lease
        }
    }

    private func sendRequest(on connection: UpstreamConnection) {
        guard let exchange, let target = exchange.route?.upstream else { return }
        upstream = connection
        connection.handler.exchange = self
        phase = .proxying
        upstreamStarted = .now()
        let bodyLength: Int?
        if requestEnded {
            bodyLength = body?.readableBytes ?? 0
        } else if case .length(let length) = exchange.body {
            bodyLength = length
        } else {
            bodyLength = nil
        }
        connection.write(.head(ProxyStage.upstreamHead(exchange, to: target, bodyLength: bodyLength)))
        if let body, body.readableBytes > 0 { connection.write(.body(.byteBuffer(body))) }
        if requestEnded {
            connection.write(.end(nil))
            requestSent = true
            setDeadline(.upstream)
        } else {
            // Streamed from here on; only a request read whole can be sent again.
            body = nil
            setDeadline(.body)
        }
        connection.flush()
        resumeClientReads()
    }

    /// Gives back or closes the upstream connection, and stops waiting for one.
    private func releaseUpstream(reusable: Bool) {
        if let lease {
            lease.cancelled = true
            self.lease = nil
        }
        if let upstream {
            self.upstream = nil
            loop.pool.release(upstream, reusable: reusable)
        }
    }

    private func resumeClientReads() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// Whether the upstream connection may carry another request (notes §1.4 P3): the
    /// request went whole, and the answer was HTTP/1.1 without `Connection: close`. An
    /// answer framed by neither length nor chunks ends with the connection, which the pool
    /// then finds inactive and closes.
    private func upstreamReusable() -> Bool {
        guard requestSent, let answer = upstreamAnswer else { return false }
        return answer.version.major == 1 && answer.version.minor >= 1 && answer.isKeepAlive
    }

    private func receiveAnswerHead(_ head: HTTPResponseHead, from connection: UpstreamConnection) {
        guard let exchange, let context else { return }
        guard head.status != .switchingProtocols else {
            upstreamFailed(HTTPParserError.invalidStatus)
            return
        }
        upstreamAnswer = head
        connection.noteKeepAlive(head.headers)
        if !requestEnded && !drainable(exchange) { keepAlive = false }
        let (clientHead, framing) = ProxyStage.clientHead(head, exchange: exchange, keepAlive: keepAlive)
        if framing == .untilClose { keepAlive = false }
        answerFraming = framing
        answerStarted = true
        answerStatus = Int(head.status.code)
        context.write(wrapOutboundOut(.head(clientHead)), promise: nil)
        setDeadline(context.channel.isWritable ? .upstream : .unreadAnswer)
    }

    private func upstreamFailed(_ error: any Error, connection: UpstreamConnection) {
        guard let exchange, let route = exchange.route?.route else { return }
        if answerStarted {
            abort(decision: "error:upstream-reset")
            return
        }
        // A reused connection the upstream closed just as it was sent a request: once,
        // on a new connection, for a request that is safe to repeat and still whole here.
        if connection.reused && !retried && requestEnded && exchange.request.method.isIdempotent {
            retried = true
            requestSent = false
            leaseUpstream()
            return
        }
        upstreamMilliseconds = upstreamStarted.map(Self.milliseconds(since:))
        let host = connection.key.description
        if error is HTTPParserError {
            gateway.logger.warning("\(route.api): the upstream \(host) sent a malformed answer: \(error)")
            answer(.upstreamInvalid(api: route.api))
        } else {
            gateway.logger.warning("\(route.api): the upstream \(host) failed before answering: \(Self.describe(error))")
            answer(.upstreamUnreachable(api: route.api))
        }
    }

    // MARK: Answers

    /// Answers a refusal, or an upstream's failure before its answer began.
    private func answer(_ problem: ProblemDetails) {
        guard let context else { return }
        guard !answerStarted else {
            abort(decision: problem.decision)
            return
        }
        releaseUpstream(reusable: false)
        let exchange = self.exchange ?? placeholderExchange()
        self.exchange = exchange
        send(
            status: problem.status, contentType: "application/problem+json", payload: problem.body(requestId: exchange.requestId),
            headers: problem.headers, decision: problem.decision, closes: problem.closesConnection)
    }

    /// Answers a GET or HEAD of the portal's paths with its page or document. The hit is
    /// logged as allowed, with no API.
    private func servePortal(_ exchange: Exchange) {
        guard let table = exchange.table, let portal = gateway.portal else { return }
        let method = exchange.request.method
        guard method == .GET || method == .HEAD else {
            answer(.methodNotAllowed(api: "the marketplace portal", method: method.rawValue, path: exchange.path, allowed: ["GET", "HEAD"]))
            return
        }
        let page = portal.answer(
            path: String(exchange.path), query: String(exchange.query ?? ""), host: String(exchange.host ?? "localhost"),
            snapshot: table.snapshot)
        send(
            status: HTTPResponseStatus(statusCode: page.status), contentType: page.contentType, payload: ByteBuffer(bytes: page.body),
            headers: [("Cache-Control", "no-cache")], decision: "allow", closes: false)
    }

    /// Writes a whole answer of the gateway's own (a refusal, a portal page) with `headers`
    /// and those the stages set, and logs its hit.
    /// - Parameter closes: whether the answer ends the connection, whatever comes after it.
    private func send(
        status: HTTPResponseStatus, contentType: String, payload: ByteBuffer, headers extra: [(String, String)], decision: String,
        closes: Bool
    ) {
        guard let context, let exchange else { return }
        var closes = closes
        if !requestEnded && exchange.body != .none {
            // The body is still to come. A client waiting for 100 Continue will not send it;
            // one that sends it is read to its end, then the connection kept only if the
            // rest is small.
            if exchange.expectsContinue && !continueSent { closes = true }
            if !drainable(exchange) { keepAlive = false }
        }
        if closes { keepAlive = false }
        let version = exchange.request.version
        var headers = HTTPHeaders()
        headers.reserveCapacity(6 + extra.count + exchange.responseHeaders.count)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(payload.readableBytes))
        headers.add(name: "X-Request-ID", value: exchange.requestId)
        headers.add(name: "Date", value: loop.date)
        for (name, value) in extra { headers.add(name: name, value: value) }
        for (name, value) in exchange.responseHeaders { headers.add(name: name, value: value) }
        ProxyStage.addConnection(&headers, keepAlive: keepAlive, client: version)
        let head = HTTPResponseHead(version: version, status: status, headers: headers)
        answerStarted = true
        answerStatus = Int(status.code)
        let sendsBody = exchange.request.method != .HEAD
        bytesOut = sendsBody ? payload.readableBytes : 0
        record(status: answerStatus, decision: decision)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if sendsBody { context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil) }
        if closes {
            phase = .closing
            setDeadline(.none)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            endAnswer()
        }
    }

    /// Writes the end of an answer whose head and body are written, and moves on: to the
    /// next request, to reading the rest of this one's body, or to closing.
    private func endAnswer() {
        guard let context else { return }
        if requestEnded {
            finishExchange(writing: true)
        } else {
            // The answer came before the body's end: read the rest and drop it, within
            // the body timeout when the connection stays, or briefly before closing.
            phase = .draining
            setDeadline(keepAlive ? .body : .drain)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            resumeClientReads()
        }
    }

    /// The answer and the request are both complete: the connection takes the next
    /// request, or closes. When `writing`, the answer's end is written here.
    private func finishExchange(writing: Bool = false) {
        guard let context else { return }
        let keepAlive = self.keepAlive
        resetExchange()
        if keepAlive {
            phase = .idle
            headGuard.awaitHead()
            setDeadline(.idle)
            if writing { context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
            replayPipelined()
        } else {
            phase = .closing
            setDeadline(.none)
            if writing {
                context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }
        }
    }

    /// Ends a connection whose answer began but cannot be completed; the truncated answer
    /// (no final chunk, or fewer bytes than its length) tells the client.
    private func abort(decision: String) {
        if !recorded { record(status: answerStarted ? answerStatus : 499, decision: decision) }
        releaseUpstream(reusable: false)
        phase = .closing
        setDeadline(.none)
        context?.close(promise: nil)
    }

    /// Whether the rest of a body is small enough to read and drop rather than close for.
    private func drainable(_ exchange: Exchange) -> Bool {
        guard case .length(let length) = exchange.body else { return exchange.body == .none }
        return length - bytesIn <= configuration.bufferedRequestBodyBytes
    }

    // MARK: Deadlines

    private func setDeadline(_ kind: DeadlineKind) {
        deadlineKind = kind
        let milliseconds: Int
        switch kind {
        case .none:
            deadline = .distantFuture
            return
        case .firstHead, .head: milliseconds = configuration.headerTimeoutMilliseconds
        case .idle, .unreadAnswer: milliseconds = configuration.idleTimeoutMilliseconds
        case .body: milliseconds = configuration.bodyTimeoutMilliseconds
        case .connect: milliseconds = configuration.connectTimeoutMilliseconds
        case .upstream: milliseconds = exchange?.route?.route.timeoutMilliseconds ?? configuration.connectTimeoutMilliseconds
        case .drain: milliseconds = 2000
        }
        deadline = .now() + .milliseconds(Int64(milliseconds))
    }

    /// Called by the loop once `deadline` has passed.
    func deadlinePassed() {
        let kind = deadlineKind
        setDeadline(.none)
        switch kind {
        case .none:
            break
        case .idle, .drain:
            context?.close(promise: nil)
        case .firstHead where !headGuard.headStarted:
            // Nothing was sent: there is no request to answer or record.
            context?.close(promise: nil)
        case .firstHead, .head:
            exchange = placeholderExchange()
            answer(.headerTimeout(milliseconds: configuration.headerTimeoutMilliseconds))
        case .body:
            if phase == .draining {
                context?.close(promise: nil)
            } else {
                answer(.bodyTimeout(milliseconds: configuration.bodyTimeoutMilliseconds))
            }
        case .connect:
            let api = exchange?.route?.route.api ?? ""
            let host = exchange?.route?.upstream?.key.description ?? ""
            gateway.logger.warning("\(api): cannot connect to the upstream \(host): no connection within \(configuration.connectTimeoutMilliseconds) ms")
            answer(.upstreamUnreachable(api: api))
        case .upstream:
            let api = exchange?.route?.route.api ?? ""
            let milliseconds = exchange?.route?.route.timeoutMilliseconds ?? 0
            upstreamMilliseconds = upstreamStarted.map(Self.milliseconds(since:))
            answer(.upstreamTimeout(api: api, milliseconds: milliseconds))
        case .unreadAnswer:
            abort(decision: "error:client-stalled")
        }
    }

    // MARK: The hit

    private func record(status: Int, decision: String) {
        guard let exchange, !recorded else { return }
        recorded = true
        loop.recorder.record(
            exchange,
            HitRecorder.Outcome(
                status: status, decision: decision, latencyMilliseconds: Self.milliseconds(since: started),
                upstreamMilliseconds: upstreamMilliseconds, bytesIn: bytesIn, bytesOut: bytesOut))
    }

    private func resetExchange() {
        exchange = nil
        generation &+= 1
        inspected = nil
        requestEnded = false
        continueSent = false
        body = nil
        bytesIn = 0
        lease = nil
        upstream = nil
        upstreamStarted = nil
        upstreamMilliseconds = nil
        upstreamAnswer = nil
        requestSent = false
        retried = false
        answerStarted = false
        answerStatus = 0
        answerFraming = .length
        bytesOut = 0
        recorded = false
    }

    /// An exchange for what was received before a head could be read.
    private func placeholderExchange() -> Exchange {
        started = .now()
        let request = GatewayRequest(
            method: .RAW(value: ""), target: "", version: .http1_1, headers: [:],
            clientIP: clientIP, receivedMilliseconds: HitLog.nowMilliseconds())
        let exchange = Exchange(request: request, table: loop.table)
        RequestIdentityStage.run(exchange, random: &loop.random)
        return exchange
    }

    static func problem(for error: HTTPParserError, requestLineBytes: Int, configuration: GatewayConfiguration) -> ProblemDetails {
        switch error {
        case .headerOverflow:
            // The method, the version and their spaces take at most a few dozen bytes more.
            if requestLineBytes > configuration.maxURIBytes { return .uriTooLong(limit: configuration.maxURIBytes) }
            return .headersTooLarge(
                "The request's head is over the gateway's limits of \(configuration.maxHeaderCount) header lines and \(configuration.maxHeaderBytes) header bytes."
            )
        case .invalidVersion:
            return .badRequest("The request is not HTTP/1.0 or HTTP/1.1; the gateway speaks HTTP/1.1 only (no HTTP/2 prior knowledge).")
        default:
            return .badRequest("The request is not valid HTTP/1.1 (\(error)); see RFC 9112 for its framing.")
        }
    }

    static func milliseconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1e6
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}

extension ClientConnectionHandler: UpstreamLeaseRequester {
    func leaseGranted(_ connection: UpstreamConnection) {
        guard phase == .leasing, exchange != nil else {
            loop.pool.release(connection, reusable: true)
            return
        }
        lease = nil
        sendRequest(on: connection)
    }

    func leaseFailed(_ error: any Error) {
        guard phase == .leasing, let exchange else { return }
        lease = nil
        let api = exchange.route?.route.api ?? ""
        let host = exchange.route?.upstream?.key.description ?? ""
        gateway.logger.warning("\(api): cannot connect to the upstream \(host): \(Self.describe(error))")
        answer(.upstreamUnreachable(api: api))
    }
}

extension ClientConnectionHandler: LimitStoreRequester {
    func limitsAnswered(_ reply: RESPValue?, token: Int) {
        guard phase == .limiting, token == generation, let exchange, let inspected, let shared = gateway.sharedLimits else { return }
        self.inspected = nil
        do throws(ProblemDetails) {
            try RequestPipeline.resume(exchange, body: inspected, reply: reply, shared: shared)
        } catch {
            answer(error)
            return
        }
        leaseUpstream()
    }
}

extension ClientConnectionHandler: UpstreamExchange {
    var clientCanReceive: Bool { context?.channel.isWritable ?? false }

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard phase == .proxying, let connection = upstream, let context else { return }
        switch part {
        case .head(let head):
            receiveAnswerHead(head, from: connection)
        case .body(let buffer):
            bytesOut += buffer.readableBytes
            if answerFraming != .none { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
            if deadlineKind == .upstream { setDeadline(.upstream) }
        case .end:
            upstreamMilliseconds = upstreamStarted.map(Self.milliseconds(since:))
            let reusable = upstreamReusable()
            upstream = nil
            loop.pool.release(connection, reusable: reusable)
            record(status: answerStatus, decision: "allow")
            endAnswer()
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged() {
        if upstream?.isWritable == true {
            if deadlineKind == .upstream && !requestSent { setDeadline(.body) }
            resumeClientReads()
        }
    }

    func upstreamFailed(_ error: any Error) {
        guard let connection = upstream else { return }
        upstream = nil
        loop.pool.discard(connection)
        upstreamFailed(error, connection: connection)
    }
}

extension HTTPMethod {
    /// Methods a request of which may be sent twice (RFC 9110 §9.2.2).
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE: return true
        default: return false
        }
    }
}
