import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The gateway's public listener as a service: NIO's HTTP/1.1 codec in front of the
/// gateway's synchronous handlers.
///
/// On graceful shutdown it stops accepting, closes idle connections, lets each request
/// in flight finish and closes its connection after the answer (NIO Extras'
/// `ServerQuiescingHelper`), then closes the idle upstream connections.
public final class GatewayServer: Service, Sendable {
    private let gateway: Gateway
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let onListening: @Sendable (SocketAddress?) -> Void
    private let draining = Mutex(false)

    /// - Parameters:
    ///   - onListening: told the bound address once the listener accepts connections.
    public init(
        gateway: Gateway, host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (SocketAddress?) -> Void = { _ in }
    ) {
        self.gateway = gateway
        self.host = host
        self.port = port
        self.group = group
        self.onListening = onListening
    }

    /// Listens until graceful shutdown or cancellation, then drains.
    /// - Throws: when the address cannot be bound.
    public func run() async throws {
        let quiescing = ServerQuiescingHelper(group: group)
        let gateway = gateway
        await gateway.prepareLoops(group)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try gateway.setUp(channel) }
            }
            .bind(host: host, port: port).get()
        onListening(channel.localAddress)
        let drained = group.next().makePromise(of: Void.self)
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await drained.futureResult.get()
        } onCancelOrGracefulShutdown: { [self] in
            // Told of a graceful shutdown and then of cancellation, it drains once.
            guard
                !draining.withLock({ started in
                    defer { started = true }; return started
                })
            else { return }
            quiescing.initiateShutdown(promise: drained)
        }
        await gateway.stopLoops()
    }
}
