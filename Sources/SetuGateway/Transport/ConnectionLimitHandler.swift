import NIOCore
import NIOHTTP1

/// Answers a connection over the limit with 503 and closes it, before reading anything.
final class ConnectionLimitHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func channelActive(context: ChannelHandlerContext) {
        let problem = ProblemDetails.tooManyConnections(limit: limit)
        let requestId = RequestIdentityStage.requestId(nil)
        let body = problem.body(requestId: requestId)
        var headers = HTTPHeaders([
            ("Content-Type", "application/problem+json"), ("Content-Length", String(body.readableBytes)),
            ("X-Request-ID", requestId), ("Connection", "close"),
        ])
        for (name, value) in problem.headers { headers.add(name: name, value: value) }
        let bytes = RawResponse.encode(HTTPResponseHead(version: .http1_1, status: problem.status, headers: headers), body: body)
        context.writeAndFlush(NIOAny(bytes)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// An answer as bytes on the wire, for a connection refused before any HTTP handler is in place.
enum RawResponse {
    static func encode(_ head: HTTPResponseHead, body: ByteBuffer?) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256 + (body?.readableBytes ?? 0))
        buffer.writeString("HTTP/\(head.version.major).\(head.version.minor) \(head.status.code) \(head.status.reasonPhrase)\r\n")
        for (name, value) in head.headers {
            buffer.writeString(name)
            buffer.writeString(": ")
            buffer.writeString(value)
            buffer.writeString("\r\n")
        }
        buffer.writeString("\r\n")
        if var body { buffer.writeBuffer(&body) }
        return buffer
    }
}
