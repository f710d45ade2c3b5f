import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SetuEntitlements
import SetuHits
import SetuManifest
import Synchronization

/// A failure to set the gateway up, said so that an operator knows what to fix.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    /// What failed and what to fix.
    public var message: String
    /// The message.
    public var description: String { message }

    /// An error that says `message`.
    public init(message: String) {
        self.message = message
    }
}

/// What answers the public listener's reserved paths under `/-/` (the marketplace portal).
public protocol PortalResponder: Sendable {
    /// The answer to a GET or HEAD of `path` (`/-` or under `/-/`), from `snapshot`.
    func answer(path: String, query: String, host: String, snapshot: GatewaySnapshot) -> PortalAnswer
}

/// A page or document of the portal.
public struct PortalAnswer: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// The gateway: the routing table in force, the limits, the hit log and the metrics,
/// shared by the event loops that serve its connections (`GatewayServer`).
///
/// The table is swapped whole by `install`; a request reads it once, when its head
/// arrives, so it finishes on the revision it began with.
public final class Gateway: Sendable {
    /// How requests and connections are treated.
    public let configuration: GatewayConfiguration
    /// What answers under `/-/`; without one those paths are refused as any unknown path.
    public let portal: (any PortalResponder)?
    let hits: HitLog
    let metrics: GatewayMetrics
    let logger: Logger
    /// What each consumer has used of its plans, across tables.
    public let counters: PlanCounters
    /// Transactions and uses of consents, across tables.
    public let ledger: ConsentLedger
    /// The Redis that plans are counted in for every replica; nil counts them in this process.
    public let sharedLimits: SharedLimits?
    /// Whether a loop's store connection was given the syncs of batched plans.
    private let syncClaimed = Atomic<Bool>(false)
    /// Keys the consent providers' JWKS served, by provider.
    private let fetchedKeys = Mutex<[String: [ConsentKey]]>([:])
    private let lastJWKS = Mutex<[String: JSONValue]>([:])
    /// The snapshot last installed, which a JWKS's new keys are compiled with.
    private let installed = Mutex<GatewaySnapshot?>(nil)
    private let tls: NIOSSLContext
    private let current = Mutex<RoutingTable?>(nil)
    /// Counts installs, so each loop rereads the table only after one.
    private let installs = Atomic<Int>(0)
    private let loops = Mutex<[ObjectIdentifier: GatewayLoop]>([:])
    /// Client connections open now, on every loop.
    let openConnections = Atomic<Int>(0)

    /// - Parameters:
    ///   - hits: where every request is recorded.
    ///   - metrics: where requests and connections are counted.
    ///   - counters: where plans' rate limits and quotas are counted; in memory unless given.
    ///   - ledger: where consents' transactions and uses are kept; in memory unless given.
    ///   - sharedLimits: the Redis that keeps plans for every replica; none unless given.
    ///   - logger: where upstream failures are told, with the upstream's address and the
    ///     system's reason, which clients are never told.
    /// - Throws: `GatewayError` when a certificate authority file cannot be read.
    public init(
        configuration: GatewayConfiguration = .init(), hits: HitLog, metrics: GatewayMetrics,
        counters: PlanCounters? = nil, ledger: ConsentLedger? = nil, sharedLimits: SharedLimits? = nil,
        portal: (any PortalResponder)? = nil, logger: Logger = Logger(label: "setu.gateway")
    ) throws {
        self.sharedLimits = sharedLimits
        var configuration = configuration
        configuration.servesPortal = portal != nil
        self.configuration = configuration
        self.portal = portal
        self.counters = try counters ?? PlanCounters(file: nil)
        self.ledger = try ledger ?? ConsentLedger(file: nil)
        self.hits = hits
        self.metrics = metrics
        self.logger = logger
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.applicationProtocols = ["http/1.1"]
        var extra: [NIOSSLCertificate] = []
        for file in configuration.upstreamCertificateAuthorities {
            do {
                extra += try NIOSSLCertificate.fromPEMFile(file)
            } catch {
                throw GatewayError(message: "cannot read the certificate authorities in \(file): \(error); give a PEM file")
            }
        }
        if !extra.isEmpty { tlsConfiguration.additionalTrustRoots = [.certificates(extra)] }
        do {
            tls = try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw GatewayError(message: "cannot set up TLS to upstreams: \(error)")
        }
    }

    /// Serves `snapshot` from the next request on.
    public func install(_ snapshot: GatewaySnapshot) {
        // One install at a time, each from the snapshot of record: a JWKS arriving while a
        // reconcile installs must not put the reconcile's predecessor back.
        installed.withLock { installed in
            installed = snapshot
            compile(snapshot)
        }
    }

    /// Compiles a snapshot with the keys fetched so far and serves it; under `installed`'s lock.
    private func compile(_ snapshot: GatewaySnapshot) {
        let previous = current.withLock { $0 }
        let compiled = RoutingTable(snapshot, counters: counters, fetchedKeys: fetchedKeys.withLock { $0 }, previous: previous)
        let recompiledRoutes = previous?.snapshot.catalogID != snapshot.catalogID
        if recompiledRoutes {
            for route in compiled.routes {
                for problem in route.validationProblems { logger.warning("\(problem)") }
            }
        }
        for problem in compiled.consent.problems { logger.warning("\(problem)") }
        current.withLock { $0 = compiled }
        installs.add(1, ordering: .releasing)
        // Cells of entitlements no longer in force are forgotten when every entitlement was
        // compiled again: at a change of the catalog or of the day, and at least daily.
        guard compiled.snapshot.changedFrom == nil, previous?.snapshot.entitlementsID != snapshot.entitlementsID else { return }
        var kept = Set<PlanCounters.Key>()
        for (consumer, byAPI) in snapshot.entitlements {
            for api in byAPI.keys { kept.insert(PlanCounters.Key(consumer: consumer, api: api)) }
        }
        counters.prune(keeping: kept, nowMilliseconds: HitLog.nowMilliseconds())
    }

    /// Takes in the keys a consent provider's JWKS serves, replacing those it served before,
    /// and serves them from the next request on.
    /// - Returns: how many keys were taken.
    /// - Throws: `GatewayError` when the document is not a JWKS; the keys before stay.
    @discardableResult
    public func takeJWKS(_ document: Data, provider: String) throws -> Int {
        guard let jwks = try? JSONValue(json: document), let list = jwks["keys"]?.arrayValue else {
            throw GatewayError(message: "the JWKS of \(provider) is not a JSON object with a 'keys' list")
        }
        // The same keys again install nothing.
        guard lastJWKS.withLock({ $0[provider] != jwks }) else { return fetchedKeys.withLock { $0[provider]?.count ?? 0 } }
        lastJWKS.withLock { $0[provider] = jwks }
        var keys: [ConsentKey] = []
        for jwk in list {
            // A key of a type Setu cannot use (an encryption key, say) is passed over.
            if let key = try? ConsentKey(jwk: jwk), jwk["use"]?.stringValue ?? "sig" == "sig" { keys.append(key) }
        }
        fetchedKeys.withLock { $0[provider] = keys }
        installed.withLock { installed in
            if let installed { compile(installed) }
        }
        return keys.count
    }

    /// The consent providers in force that publish a JWKS: name, address and refresh interval.
    public var jwksSources: [(provider: String, uri: String, refreshMilliseconds: Int)] {
        (table?.snapshot.consentProviders.values ?? [:].values).compactMap { provider in
            provider.jwksURI.map { (provider.name, $0, provider.jwksRefreshMilliseconds) }
        }.sorted { $0.provider < $1.provider }
    }

    /// The alert rules of the snapshot being served, by name.
    public var alertRules: [String: AlertRule] {
        table?.snapshot.alertRules ?? [:]
    }

    /// Quota use in the current period, with each quota in force.
    public func quotaUsage() -> [QuotaUse] {
        let table = self.table
        return counters.usage { table?.quota(consumer: $0, api: $1) }
    }

    /// Writes quota use to the counters' state file, when it changed.
    /// - Throws: the file system's error.
    public func saveQuotas() throws {
        let table = self.table
        try counters.save { table?.quota(consumer: $0, api: $1) }
    }

    /// How many tables were installed so far.
    var installCount: Int {
        installs.load(ordering: .acquiring)
    }

    /// The revision being served, if any.
    public var revision: String? {
        current.withLock { $0?.snapshot.revision }
    }

    /// The table a request arriving now is judged by.
    var table: RoutingTable? {
        current.withLock { $0 }
    }

    /// The state `eventLoop` keeps for the gateway, made when its first connection arrives.
    func loop(for eventLoop: any EventLoop) -> GatewayLoop {
        let id = ObjectIdentifier(eventLoop)
        let (loop, made) = loops.withLock { loops in
            if let loop = loops[id] { return (loop, false) }
            let loop = GatewayLoop(eventLoop: eventLoop, gateway: self, tls: tls)
            loops[id] = loop
            return (loop, true)
        }
        if made { loop.start() }
        return loop
    }

    /// Whether the caller is the first to ask: that loop's store connection sends the syncs.
    func claimSync() -> Bool {
        !syncClaimed.exchange(true, ordering: .relaxed)
    }

    /// Makes the state of every loop of `group` before the first connection comes, so that
    /// each loop's connection to the shared store is up by then.
    func prepareLoops(_ group: any EventLoopGroup) async {
        for eventLoop in group.makeIterator() {
            _ = try? await eventLoop.submit { [self] in _ = loop(for: eventLoop) }.get()
        }
    }

    /// Stops every loop's deadline checks and closes its idle upstream connections; call
    /// once the listener has drained.
    func stopLoops() async {
        let all = loops.withLock { loops in
            defer { loops.removeAll() }
            return Array(loops.values)
        }
        for loop in all {
            try? await loop.eventLoop.submit { loop.stop() }.get()
        }
    }

    /// Sets up a newly accepted connection's pipeline; runs on its event loop.
    func setUp(_ channel: any Channel) throws {
        let open = openConnections.add(1, ordering: .relaxed).newValue
        metrics.connectionOpened()
        channel.closeFuture.whenComplete { [self] _ in
            openConnections.subtract(1, ordering: .relaxed)
            metrics.connectionClosed()
        }
        let pipeline = channel.pipeline.syncOperations
        guard open <= configuration.maxConnections else {
            metrics.connectionRefused()
            try pipeline.addHandler(ConnectionLimitHandler(limit: configuration.maxConnections))
            return
        }
        let loop = loop(for: channel.eventLoop)
        var limits = NIOHTTPDecoderLimitConfiguration()
        // The request line counts against NIO's field and total limits too; the framing
        // stage applies the exact ones, and the head guard tells 414 from 431 beyond them.
        limits.maxHeaderFieldSize = max(configuration.maxURIBytes, configuration.maxHeaderBytes) + 1
        limits.maxHeaderListSize = configuration.maxURIBytes + configuration.maxHeaderBytes + 1
        limits.maxHeaderFieldCount = configuration.maxHeaderCount + 1
        var encoding = HTTPResponseEncoder.Configuration()
        // The proxy stage frames every answer: HEAD answers and HTTP/1.0 clients need
        // framing the encoder would get wrong.
        encoding.automaticallySetFramingHeaders = false
        // No outbound header validators: every header the gateway writes either came through
        // NIO's strict parser, which refuses CR, LF and NUL, or is its own, made from checked
        // parts (a request id's characters, manifest names, a checked Host, an address).
        let headGuard = RequestHeadGuard()
        try pipeline.addHandler(headGuard)
        try pipeline.addHandler(HTTPResponseEncoder(configuration: encoding))
        try pipeline.addHandler(
            ByteToMessageHandler(
                HTTPRequestDecoder(
                    leftOverBytesStrategy: .dropBytes,
                    informationalResponseStrategy: .drop,
                    limitConfiguration: limits)))
        try pipeline.addHandler(ClientConnectionHandler(loop: loop, headGuard: headGuard))
    }
}
