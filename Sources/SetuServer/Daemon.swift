import Foundation
import Hummingbird
import Logging
import NIOCore
import SetuGateway
import SetuHits
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `setu serve`: the git source, reconcile loop, gateway, admin listener and hit-log
/// writer, composed as one `ServiceGroup`.
///
/// `SIGTERM` and `SIGINT` shut down gracefully, in reverse order of start: the gateway
/// stops accepting and finishes the requests in flight, then the admin listener and the
/// reconcile loop stop, and last the hit log writes every hit and fsyncs. `SIGHUP` asks
/// for a reconcile; `SIGUSR1` reopens the hit file.
public struct Daemon: Sendable {
    /// What it was told.
    public let configuration: ServeConfiguration
    /// Called with `gateway` or `admin` and the address each listener bound, once it is listening.
    public var onListening: @Sendable (String, ServeConfiguration.Address) -> Void

    /// A daemon; nothing starts until `run`.
    public init(configuration: ServeConfiguration,
                onListening: @escaping @Sendable (String, ServeConfiguration.Address) -> Void = { _, _ in }) {
        self.configuration = configuration
        self.onListening = onListening
    }

    /// Runs until a shutdown signal.
    /// - Throws: when the state directory or the hit log cannot be opened, or a listener cannot bind.
    public func run(logger: Logger) async throws {
        do {
            try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw ReconcileError(message: "cannot create the state directory \(configuration.stateDirectory): \(error.localizedDescription)")
        }
        let metrics = GatewayMetrics()
        let hitLog = try HitLog(configuration: configuration.hits, onDrop: { metrics.droppedHits($0) })
        let gateway = Gateway(configuration: configuration.gateway, hits: hitLog, metrics: metrics)
        let reconciler = ReconcileService(configuration: configuration, gateway: gateway, metrics: metrics, logger: logger)
        let onListening = onListening

        let gatewayApplication = Application(
            responder: gateway,
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: nil),
            onServerRunning: { channel in
                onListening("gateway", Self.bound(channel.localAddress, fallback: configuration.listen))
            },
            logger: logger
        )
        let adminApplication = Application(
            router: AdminRouter.make(reconciler: reconciler, metrics: metrics),
            configuration: .init(address: .hostname(configuration.admin.host, port: configuration.admin.port),
                                 serverName: nil),
            onServerRunning: { channel in
                onListening("admin", Self.bound(channel.localAddress, fallback: configuration.admin))
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: HitLogService(hitLog: hitLog, logger: logger)),
                .init(service: SignalService(reconciler: reconciler, hitLog: hitLog, logger: logger)),
                .init(service: reconciler),
                .init(service: adminApplication),
                .init(service: GatewayService(application: gatewayApplication, gateway: gateway)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
    }

    private static func bound(_ address: SocketAddress?, fallback: ServeConfiguration.Address) -> ServeConfiguration.Address {
        guard let address, let port = address.port else { return fallback }
        return ServeConfiguration.Address(host: address.ipAddress ?? fallback.host, port: port)
    }
}

/// The gateway's listener; once it has drained, the upstream connections are closed.
struct GatewayService: Service {
    let application: any Service
    let gateway: Gateway

    func run() async throws {
        do {
            try await application.run()
        } catch {
            try? await gateway.shutdown()
            throw error
        }
        try await gateway.shutdown()
    }
}

/// Keeps the hit log open until shutdown, then writes every queued hit and closes it.
/// Dropped hits are counted in the metrics as they happen, and said in the log every
/// ten seconds while any are being dropped.
struct HitLogService: Service {
    let hitLog: HitLog
    let logger: Logger

    func run() async throws {
        var reported: UInt64 = 0
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            } catch {
                break
            }
            let dropped = hitLog.statistics.dropped
            if dropped > reported {
                logger.warning("the hit log dropped \(dropped - reported) hits in the last 10 s (\(dropped) since start): its queue was full or a write failed")
                reported = dropped
            }
        }
        hitLog.close()
    }
}

/// `SIGHUP` reconciles; `SIGUSR1` reopens the hit file.
struct SignalService: Service {
    let reconciler: ReconcileService
    let hitLog: HitLog
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        for await signal in signals.cancelOnGracefulShutdown() {
            switch signal {
            case .sighup:
                logger.info("SIGHUP: reconciling")
                reconciler.trigger()
            case .sigusr1:
                logger.info("SIGUSR1: reopening the hit log")
                hitLog.reopen()
            default:
                break
            }
        }
    }
}
