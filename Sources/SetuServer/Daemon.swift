import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import SetuGateway
import SetuHits
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
    /// Called when a service failed and the others have not stopped `stuckAfter` later, with
    /// the failure and after the hit log was written and closed (`FailureWatchdog`).
    public var onStuck: @Sendable (Error) -> Void
    /// How long the other services may take to stop once one has failed.
    public var stuckAfter: Duration

    /// A daemon; nothing starts until `run`.
    public init(
        configuration: ServeConfiguration,
        onListening: @escaping @Sendable (String, ServeConfiguration.Address) -> Void = { _, _ in },
        stuckAfter: Duration = .seconds(10), onStuck: @escaping @Sendable (Error) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.onListening = onListening
        self.stuckAfter = stuckAfter
        self.onStuck = onStuck
    }

    /// Runs until a shutdown signal.
    /// - Throws: when the state directory or the hit log cannot be opened, or a listener cannot bind.
    public func run(logger: Logger) async throws {
        do {
            try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw ReconcileError(message: "cannot create the state directory \(configuration.stateDirectory): \(error.localizedDescription)")
        }
        if let exposure = configuration.adminExposure { throw ListenError(message: exposure) }
        // Both addresses are tried before anything starts, so an address in use is said at
        // once and plainly, and the services never start only to be cancelled.
        try await Self.checkListening(on: configuration.listen, for: "the gateway", option: "--listen")
        try await Self.checkListening(on: configuration.admin, for: "the admin listener", option: "--admin")
        Self.raiseOpenFileLimit(logger: logger)
        let metrics = GatewayMetrics()
        let alerts = AlertEvaluator()
        let lastHour = LiveSeries()
        let hitLog = try HitLog(configuration: configuration.hits, onDrop: { metrics.droppedHits($0) }, observers: [alerts, lastHour])
        let gateway: Gateway
        do {
            let counters = try PlanCounters(file: configuration.stateDirectory + "/quotas.json")
            let ledger = try ConsentLedger(file: configuration.stateDirectory + "/consents.jsonl")
            let shared = configuration.limits.map {
                SharedLimits(address: $0, timeoutMilliseconds: configuration.limitsTimeoutMilliseconds, metrics: metrics, logger: logger)
            }
            gateway = try Gateway(
                configuration: configuration.gateway, hits: hitLog, metrics: metrics, counters: counters,
                ledger: ledger, sharedLimits: shared, portal: PortalService(), logger: logger)
        } catch {
            hitLog.close()
            throw error
        }
        let onStuck = onStuck
        let watchdog = FailureWatchdog(after: stuckAfter) { error in
            hitLog.close()
            onStuck(error)
        }
        defer { watchdog.stopped() }
        // The alert rules change with the snapshot they came in, before another hit is served.
        let reconciler = ReconcileService(configuration: configuration, gateway: gateway, metrics: metrics, logger: logger) { snapshot in
            alerts.update(rules: snapshot.alertRules.values.sorted { $0.name < $1.name }.map(AlertService.rule), now: HitLog.nowMilliseconds())
        }
        let onListening = onListening

        let gatewayServer = GatewayServer(gateway: gateway, host: configuration.listen.host, port: configuration.listen.port) {
            onListening("gateway", Self.bound($0, fallback: configuration.listen))
        }
        var adminServer = HTTPServerBuilder.http1()
        if let tls = configuration.adminTLS {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
                adminServer = try .tls(tlsConfiguration: TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                hitLog.close()
                throw ListenError(message: "cannot serve the admin listener over HTTPS with \(tls.certificateFile) and \(tls.keyFile): \(error)")
            }
        } else if configuration.adminToken != nil, !ServeConfiguration.isLoopback(configuration.admin.host) {
            logger.warning(
                "the admin listener on \(configuration.admin) is plain HTTP: its token crosses the network in the clear, and browsers keep the sign-in cookie (Secure) only over HTTPS; give --admin-tls-cert and --admin-tls-key, or put it behind a TLS proxy"
            )
        }
        let adminApplication = Application(
            router: AdminRouter.make(
                reconciler: reconciler, metrics: metrics, alerts: alerts,
                dashboard: DashboardSource(hitDirectory: configuration.hits.directory, lastHour: lastHour, gateway: gateway),
                token: configuration.adminToken),
            server: adminServer,
            configuration: .init(
                address: .hostname(configuration.admin.host, port: configuration.admin.port),
                serverName: nil),
            onServerRunning: { channel in
                onListening("admin", Self.bound(channel.localAddress, fallback: configuration.admin))
            },
            logger: logger
        )
        let webhooks = WebhookDelivery(externalURL: "http://\(configuration.admin)", logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: ([
                    HitLogService(hitLog: hitLog, logger: logger),
                    RollupService(hitDirectory: configuration.hits.directory, logger: logger),
                    webhooks,
                    AlertService(
                        evaluator: alerts, gateway: gateway, metrics: metrics, webhooks: webhooks,
                        eventsFile: configuration.stateDirectory + "/alerts.jsonl", logger: logger),
                    QuotaService(gateway: gateway, logger: logger),
                    JWKSService(gateway: gateway, logger: logger),
                    SignalService(reconciler: reconciler, hitLog: hitLog, logger: logger),
                    reconciler,
                    adminApplication,
                    gatewayServer,
                ] as [any Service]).map { .init(service: WatchedService(service: $0, watchdog: watchdog)) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
        try await group.run()
    }

    /// Binds the address as the listener will (with SO_REUSEADDR, on the same event loops)
    /// and lets it go again.
    private static func checkListening(on address: ServeConfiguration.Address, for listener: String, option: String) async throws {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port).get()
            try await channel.close()
        } catch {
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw ListenError(message: "cannot listen on \(address) for \(listener): \(reason); choose another address with \(option)")
        }
    }

    /// Lets the process open as many files as its hard limit allows: each client and
    /// upstream connection is one, and the usual soft limit of 1,024 is far below the
    /// gateway's connection limit.
    private static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("cannot raise the open-file limit to \(limit.rlim_max): \(String(cString: strerror(errno)))")
        }
    }

    private static func bound(_ address: SocketAddress?, fallback: ServeConfiguration.Address) -> ServeConfiguration.Address {
        guard let address, let port = address.port else { return fallback }
        return ServeConfiguration.Address(host: address.ipAddress ?? fallback.host, port: port)
    }
}

/// An address a listener cannot bind.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// Which address, for what, why, and the option to change.
    public var message: String
    /// The message.
    public var description: String { message }
}

/// Sees that a daemon with a failed service ends. When a service fails, the group cancels
/// the others; cancelling a sequence made with `cancelOnGracefulShutdown()` (the signal
/// service here, Hummingbird's date cache) can deadlock in swift-async-algorithms' `merge`,
/// which holds its lock across a suspension (apple/swift-async-algorithms#430). The
/// process would then neither serve nor exit, so once a service has failed and the
/// group has not stopped in time, `onStuck` is called with the failure.
final class FailureWatchdog: Sendable {
    private let delay: Duration
    private let onStuck: @Sendable (Error) -> Void
    /// Whether a failure was seen, and whether the group stopped.
    private let state = Mutex((failed: false, stopped: false))

    init(after delay: Duration, onStuck: @escaping @Sendable (Error) -> Void) {
        self.delay = delay
        self.onStuck = onStuck
    }

    /// A service failed: unless the group stops within the delay, `onStuck` is called.
    /// Only the first failure counts.
    func serviceFailed(_ error: Error) {
        let first = state.withLock { state in
            defer { state.failed = true }
            return !state.failed
        }
        guard first else { return }
        // A thread of Dispatch's, since the deadlock it watches for holds an event loop.
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(delay / .nanoseconds(1)))) { [self] in
            if !state.withLock({ $0.stopped }) { onStuck(error) }
        }
    }

    /// The group stopped.
    func stopped() {
        state.withLock { $0.stopped = true }
    }
}

/// A service whose failure the watchdog hears of.
struct WatchedService: Service {
    let service: any Service
    let watchdog: FailureWatchdog

    func run() async throws {
        do {
            try await service.run()
        } catch {
            watchdog.serviceFailed(error)
            throw error
        }
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

/// Writes quota use to `<state>/quotas.json`, and the consents' transactions and uses to
/// `<state>/consents.jsonl`, every second while they change, and once more after the gateway
/// has stopped: a crash loses at most the last second's counts.
struct QuotaService: Service {
    let gateway: Gateway
    let logger: Logger

    func run() async throws {
        var failing = false
        while true {
            let stopping: Bool
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                stopping = false
            } catch {
                stopping = true
            }
            do {
                try gateway.saveQuotas()
                try gateway.ledger.save()
                if failing { logger.notice("quota use is written again to \(gateway.counters.file ?? "")") }
                failing = false
            } catch {
                if !failing {
                    logger.error("cannot write quota and consent use: \(error); counts since the last write are lost on a restart until it works again")
                }
                failing = true
            }
            if stopping { break }
        }
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
