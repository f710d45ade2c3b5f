import NIOCore
import NIOHTTP1

/// The side of a proxied request that an upstream connection reports to: the client
/// connection whose request it carries while it is leased.
protocol UpstreamExchange: AnyObject {
    /// Whether the client can take more of the answer now; while it cannot, the upstream
    /// connection stops reading, so a client that stops reading stops the upstream too.
    var clientCanReceive: Bool { get }
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    /// The connection failed or closed while carrying the exchange.
    func upstreamFailed(_ error: any Error)
}

/// One connection to an upstream, owned by its event loop's pool: idle in the pool, or
/// leased to one exchange at a time.
final class UpstreamConnection {
    /// Where a connection is, as its pool sees it.
    enum Place {
        case idle
        case leased
        /// Closed, or closing; counted out of the pool.
        case gone
    }

    let key: UpstreamTarget.Key
    let channel: any Channel
    let handler: UpstreamHandler
    /// Whether it has carried a request before; a failure before any answer on a reused
    /// connection may be the upstream closing it as idle, which a retry can survive.
    var reused = false
    /// Made to be leased at once.
    var place = Place.leased
    /// When it was last put back in the pool.
    var idleSince = NIODeadline.now()
    /// How long the upstream keeps an idle connection, from its `Keep-Alive: timeout=`.
    var upstreamKeepAlive: TimeAmount?

    init(key: UpstreamTarget.Key, channel: any Channel, handler: UpstreamHandler) {
        self.key = key
        self.channel = channel
        self.handler = handler
    }

    var isWritable: Bool { channel.isWritable }

    func write(_ part: HTTPClientRequestPart) {
        handler.write(part)
    }

    func flush() {
        handler.flush()
    }

    func close() {
        handler.exchange = nil
        channel.close(promise: nil)
    }

    /// Reads the `timeout=` of an answer's `Keep-Alive` header (RFC 2068 §19.7.1.1).
    func noteKeepAlive(_ headers: HTTPHeaders) {
        guard let value = headers.first(name: "keep-alive") else { return }
        let prefix = Array("timeout=".utf8)
        for parameter in HeaderName.tokens(value) where parameter.starts(with: prefix) {
            guard let seconds = Int64(String(decoding: parameter.dropFirst(prefix.count), as: UTF8.self)), seconds > 0 else { continue }
            upstreamKeepAlive = .seconds(seconds)
        }
    }
}

/// The last handler of an upstream connection's pipeline: passes the answer's parts to
/// the exchange that leased the connection, and holds reads while that exchange's client
/// cannot take more (swift-nio-examples' `GlueHandler`). While the connection is idle in
/// the pool it keeps reading, so that the upstream closing it is seen at once; anything
/// else it sends then is unsolicited and closes it.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange the connection is leased to; nil while idle.
    weak var exchange: (any UpstreamExchange)?
    /// Called when the connection closes while idle, so the pool forgets it.
    var onIdleClose: (() -> Void)?
    private var context: ChannelHandlerContext?
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else {
            // An upstream may not speak unless asked.
            context.close(promise: nil)
            return
        }
        exchange.upstreamReceived(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.upstreamWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.upstreamFailed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.upstreamFailed(ChannelError.eof)
        } else {
            onIdleClose?()
        }
        onIdleClose = nil
    }

    func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.clientCanReceive {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Reads again once the client can take more.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }
}
