import NIOCore

/// Watches the bytes of a connection before NIO's parser sees them, while the connection
/// waits for a request's head: it tells the connection when a head begins (the header
/// timeout runs from its first byte), and how long its request line is, so that a head too
/// large for the parser is answered 414 when its request line is what is too long, and 431
/// otherwise.
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Whether a head is awaited; false from a head's arrival until its answer is done.
    private(set) var watching = true
    /// Whether bytes of the awaited head have arrived.
    private(set) var headStarted = false
    /// How long the awaited head's request line is, or has been so far.
    private(set) var requestLineBytes = 0
    private var requestLineEnded = false
    /// Told when the first bytes of an awaited head arrive.
    var onHeadStarted: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if watching {
            let buffer = unwrapInboundIn(data)
            if !headStarted && buffer.readableBytes > 0 {
                headStarted = true
                onHeadStarted?()
            }
            if !requestLineEnded {
                if let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                    requestLineBytes += end - buffer.readerIndex
                    requestLineEnded = true
                } else {
                    requestLineBytes += buffer.readableBytes
                }
            }
        }
        context.fireChannelRead(data)
    }

    /// A head arrived whole: nothing to watch until its answer is done.
    func headArrived() {
        watching = false
    }

    /// The connection waits for the next head.
    func awaitHead() {
        watching = true
        headStarted = false
        requestLineEnded = false
        requestLineBytes = 0
    }
}
