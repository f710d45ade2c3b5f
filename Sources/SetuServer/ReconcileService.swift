import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import SetuEntitlements
import SetuFormats
import SetuGateway
import SetuHits
import SetuStorage
import Synchronization

/// The reconcile loop as a service: reconciles at start, every interval, and whenever
/// asked (`POST /reconcile`, `SIGHUP`), one reconcile at a time. Each good reconcile
/// swaps a new snapshot into the gateway; a failed one leaves the last good snapshot
/// serving and says why in the status.
public final class ReconcileService: Service, Sendable {
    private struct Request: Sendable {
        var force: Bool
        var done: CheckedContinuation<ReconcileStatus, Never>?
        /// Not a reconcile: the replay and entitlements of the last one are written to the state directory.
        var save = false
    }

    private let configuration: ServeConfiguration
    private let reconciler: Reconciler
    private let gateway: Gateway
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let current: Mutex<ReconcileStatus>
    private let requests: AsyncStream<Request>
    private let requestContinuation: AsyncStream<Request>.Continuation
    /// The status waiting to be written to `<state>/status.json`, with how many reconciles have
    /// ended and when the oldest status not yet written was taken, and the writer's wake-ups: a
    /// large marketplace's status takes longer to encode than a reconcile takes, so it is
    /// written after the reconciles, the latest one only.
    private let unwritten = Mutex<(status: ReconcileStatus?, reconciles: Int, since: ContinuousClock.Instant)>((nil, 0, .now))
    private let statusWrites: AsyncStream<Void>
    private let statusWriteContinuation: AsyncStream<Void>.Continuation

    /// Told of each snapshot once it is serving, on the reconcile's thread: the alert rules.
    private let onInstall: @Sendable (GatewaySnapshot) -> Void

    init(
        configuration: ServeConfiguration, gateway: Gateway, metrics: GatewayMetrics, logger: Logger,
        onInstall: @escaping @Sendable (GatewaySnapshot) -> Void = { _ in }
    ) {
        self.onInstall = onInstall
        self.configuration = configuration
        reconciler = Reconciler(configuration: configuration)
        self.gateway = gateway
        self.metrics = metrics
        self.logger = logger
        current = Mutex(ReconcileStatus(source: reconciler.sourceDescription, branch: configuration.branch))
        (requests, requestContinuation) = AsyncStream.makeStream(of: Request.self, bufferingPolicy: .unbounded)
        (statusWrites, statusWriteContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The status now.
    public var status: ReconcileStatus {
        var status = current.withLock { $0 }
        status.quotas = gateway.quotaUsage()
        return status
    }

    /// Asks for a reconcile soon, without waiting for it (`SIGHUP`).
    public func trigger() {
        requestContinuation.yield(Request(force: false, done: nil))
    }

    /// Reconciles now and returns the status after it (`POST /reconcile`).
    public func reconcileNow() async -> ReconcileStatus {
        await withCheckedContinuation { continuation in
            if case .terminated = requestContinuation.yield(Request(force: false, done: continuation)) {
                continuation.resume(returning: status)
            }
        }
    }

    /// Reconciles at once, then on each tick or request until graceful shutdown.
    public func run() async throws {
        let interval = configuration.intervalSeconds
        let continuation = requestContinuation
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Encoded and written on the thread pool, as the event loops serve the admin
                // listener, once reconciles have paused for a second (or ten seconds after the
                // oldest change not written): encoding a large marketplace's status takes a core
                // for longer than a reconcile after one commit, and would compete with a burst of them.
                for await _ in self.statusWrites {
                    var seen = self.unwritten.withLock { $0.reconciles }
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        let (reconciles, since) = self.unwritten.withLock { ($0.reconciles, $0.since) }
                        if reconciles == seen || ContinuousClock.now - since >= .seconds(10) { break }
                        seen = reconciles
                    }
                    guard let status = self.unwritten.withLock({ $0.status.take() }) else { continue }
                    try? await NIOThreadPool.singleton.runIfActive { self.writeStatusFile(status) }
                    // So are the replay and the entitlements, for a restart to go on from, between reconciles.
                    continuation.yield(Request(force: false, done: nil, save: true))
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                    if Task.isCancelled { break }
                    continuation.yield(Request(force: false, done: nil))
                }
            }
            await withGracefulShutdownHandler {
                await reconcile(force: true)
                for await request in requests {
                    guard !request.save else {
                        await save(wait: false)
                        continue
                    }
                    let status = await reconcile(force: request.force)
                    request.done?.resume(returning: status)
                }
            } onGracefulShutdown: {
                continuation.finish()
            }
            statusWriteContinuation.finish()
            group.cancelAll()
        }
        // The last status, replay and entitlements are written before the service ends.
        if let status = unwritten.withLock({ $0.status.take() }) { writeStatusFile(status) }
        await save(wait: true)
    }

    private func save(wait: Bool) async {
        let reconciler = reconciler
        do {
            try await NIOThreadPool.singleton.runIfActive { try reconciler.save(wait: wait) }
        } catch {
            logger.error("cannot write the replay and entitlements to \(configuration.stateDirectory): \(error)")
        }
    }

    @discardableResult
    private func reconcile(force: Bool) async -> ReconcileStatus {
        let started = ContinuousClock.now
        let result: Result<Reconciler.Outcome, Error>
        do {
            let reconciler = reconciler
            result = .success(try await NIOThreadPool.singleton.runIfActive { try reconciler.reconcile(force: force) })
        } catch {
            result = .failure(error)
        }
        // The reconcile ends when its snapshot is serving.
        if case .success(.applied(_, let snapshot)) = result {
            gateway.install(snapshot)
            onInstall(snapshot)
        }
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let at = Timestamp.rfc3339(milliseconds: HitLog.nowMilliseconds())
        let status: ReconcileStatus
        switch result {
        case .success(.applied(let step, let snapshot)):
            let attempt = ReconcileStatus.Attempt(at: at, result: "applied", durationMs: milliseconds, revision: snapshot.revision)
            let counts = step.derived.counts
            status = current.withLock { status in
                status.applied(step.outcome, derived: step.derived, counts: counts, snapshot: snapshot, attempt: attempt)
                return status
            }
            metrics.reconcile(
                succeeded: true, seconds: milliseconds / 1000, revision: snapshot.revision,
                entitlements: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }))
            logger.info(
                "reconciled",
                metadata: [
                    "revision": "\(snapshot.revision)", "ms": "\(Int(milliseconds))",
                    "replayed": "\(step.outcome.replayedCommits)",
                    "entitlements": "\(step.derivedWhole ? "derived again" : "updated")",
                ])
            if let rewritten = step.outcome.rewrittenHistory { logger.warning("\(rewritten)") }
            for entitlement in step.ended {
                logger.notice(
                    "entitlement ended",
                    metadata: [
                        "consumer": "\(entitlement.consumer)", "subscription": "\(entitlement.subscription)",
                        "api": "\(entitlement.api)", "plan": "\(entitlement.plan)",
                        "why": "\(entitlement.state == .active ? "its subscription was removed" : entitlement.reason ?? entitlement.state.rawValue)",
                        "revision": "\(snapshot.revision)",
                    ])
            }
        case .success(.unchanged(let revision)):
            let attempt = ReconcileStatus.Attempt(at: at, result: "unchanged", durationMs: milliseconds, revision: revision)
            status = current.withLock { status in
                status.unchanged(attempt)
                return status
            }
            metrics.reconcile(succeeded: true, seconds: milliseconds / 1000, revision: nil, entitlements: nil)
        case .failure(let error):
            let attempt = ReconcileStatus.Attempt(
                at: at, result: "failed", durationMs: milliseconds, revision: nil,
                error: "\(error)")
            status = current.withLock { status in
                status.failed(attempt)
                return status
            }
            metrics.reconcile(succeeded: false, seconds: milliseconds / 1000, revision: nil, entitlements: nil)
            logger.error("reconcile failed; the last good snapshot keeps serving", metadata: ["error": "\(error)"])
        }
        unwritten.withLock { unwritten in
            if unwritten.status == nil { unwritten.since = .now }
            unwritten.status = status
            unwritten.reconciles += 1
        }
        statusWriteContinuation.yield()
        return status
    }

    /// `<state>/status.json`, replaced whole so a reader never sees half of it.
    private func writeStatusFile(_ status: ReconcileStatus) {
        let path = configuration.stateDirectory + "/status.json"
        do {
            let data = try ReconcileStatus.encoder.encode(status)
            try AtomicFile.replace(path, with: [UInt8](data))
        } catch {
            logger.error("cannot write \(path): \(error)")
        }
    }
}

extension ReconcileStatus {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The status as JSON, as `/status` serves it.
    public func json() -> [UInt8] {
        ((try? ReconcileStatus.encoder.encode(self)) ?? Data("{}".utf8)).map { $0 } + [UInt8(ascii: "\n")]
    }

    /// What `POST /reconcile` answers: the status without its lists (entitlements, changes not
    /// in force, problems, quotas), which `/status` has.
    public func summaryJSON() -> [UInt8] {
        struct Summary: Encodable {
            var ready: Bool
            var revision: String?
            var servingSince: String?
            var trustRoot: String?
            var verification: String?
            var rewrittenHistory: String?
            var lastAttempt: Attempt?
            var conditions: [Condition]
            var counts: [String: Int]
        }
        let summary = Summary(
            ready: ready, revision: revision, servingSince: servingSince, trustRoot: trustRoot,
            verification: verification, rewrittenHistory: rewrittenHistory, lastAttempt: lastAttempt,
            conditions: conditions, counts: counts)
        return ((try? ReconcileStatus.encoder.encode(summary)) ?? Data("{}".utf8)).map { $0 } + [UInt8(ascii: "\n")]
    }
}
