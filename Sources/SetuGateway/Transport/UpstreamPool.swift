import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Who waits for a connection from the pool.
protocol UpstreamLeaseRequester: AnyObject {
    /// The connection is the requester's until it releases it.
    func leaseGranted(_ connection: UpstreamConnection)
    /// No connection could be made.
    func leaseFailed(_ error: any Error)
}

/// A request for a connection that could not be met at once; cancelled when the
/// requester stops waiting.
final class UpstreamLease {
    weak var requester: (any UpstreamLeaseRequester)?
    let target: UpstreamTarget
    var cancelled = false

    init(target: UpstreamTarget, requester: any UpstreamLeaseRequester) {
        self.target = target
        self.requester = requester
    }
}

/// One event loop's connections to upstreams, by scheme, host and port, so that a
/// request and its upstream connection share a loop and nothing here needs a lock (the
/// per-loop pools of Netflix's Zuul 2 and Envoy).
///
/// At most `connectionsPerUpstream` connections to one upstream are open at once; a
/// request beyond that waits for one to be released. Idle connections are reused newest
/// first and closed after the idle timeout, or sooner when the upstream said it keeps
/// them for less. A connection goes back to the pool only when its exchange says it may.
final class UpstreamPool {
    private struct Host {
        var idle: [UpstreamConnection] = []
        /// Idle, leased and connecting.
        var open = 0
        var waiting = CircularBuffer<UpstreamLease>()
    }

    /// What a lease found.
    enum Lease {
        /// An idle connection, the caller's now.
        case ready(UpstreamConnection)
        /// A connection is being made or waited for; the requester hears of it.
        case waiting(UpstreamLease)
    }

    private let eventLoop: any EventLoop
    private let configuration: GatewayConfiguration
    private let tls: NIOSSLContext
    private var hosts: [UpstreamTarget.Key: Host] = [:]
    private var closed = false

    init(eventLoop: any EventLoop, configuration: GatewayConfiguration, tls: NIOSSLContext) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.tls = tls
    }

    /// A connection to `target`: an idle one at once, or one made or freed later.
    func lease(_ target: UpstreamTarget, for requester: any UpstreamLeaseRequester) -> Lease {
        let key = target.key
        while let connection = hosts[key]?.idle.popLast() {
            guard connection.channel.isActive else {
                forget(connection)
                continue
            }
            connection.place = .leased
            connection.reused = true
            return .ready(connection)
        }
        let lease = UpstreamLease(target: target, requester: requester)
        if hosts[key, default: Host()].open < configuration.connectionsPerUpstream && !closed {
            connect(lease)
        } else {
            hosts[key, default: Host()].waiting.append(lease)
        }
        return .waiting(lease)
    }

    /// Takes a connection back: into the pool, or to a waiting request, when `reusable`;
    /// otherwise it is closed.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.handler.exchange = nil
        guard reusable, !closed, connection.channel.isActive, connection.place == .leased else {
            discard(connection)
            return
        }
        if let lease = nextWaiting(connection.key) {
            connection.reused = true
            // Handed over on the next tick, so the releasing exchange finishes first.
            eventLoop.assumeIsolated().execute { [self] in grant(connection, to: lease) }
            return
        }
        connection.idleSince = .now()
        connection.place = .idle
        hosts[connection.key, default: Host()].idle.append(connection)
    }

    /// Closes a connection that must not be reused.
    func discard(_ connection: UpstreamConnection) {
        forget(connection)
        connection.close()
    }

    /// Closes idle connections older than their idle timeout.
    func sweep(now: NIODeadline) {
        let limit = TimeAmount.milliseconds(Int64(configuration.upstreamIdleTimeoutMilliseconds))
        var expired: [UpstreamConnection] = []
        for host in hosts.values {
            for connection in host.idle {
                var allowed = limit
                // Closed a second before the upstream would, so neither side races the other.
                if let upstream = connection.upstreamKeepAlive { allowed = min(allowed, upstream - .seconds(1)) }
                if now - connection.idleSince >= allowed { expired.append(connection) }
            }
        }
        for connection in expired { discard(connection) }
    }

    /// Closes every idle connection and makes no new ones; leased ones close on release.
    func shutdown() {
        closed = true
        let idle = hosts.values.flatMap(\.idle)
        for connection in idle { discard(connection) }
        for key in hosts.keys {
            while let lease = nextWaiting(key) { lease.requester?.leaseFailed(ChannelError.ioOnClosedChannel) }
        }
    }

    // MARK: Making connections

    private func connect(_ lease: UpstreamLease) {
        let key = lease.target.key
        hosts[key, default: Host()].open += 1
        let tls = key.tls ? self.tls : nil
        // An IP address is connected to as it is; a name is resolved (by NIO, off the loop).
        let address = try? SocketAddress(ipAddress: key.host, port: key.port)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeoutMilliseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        // SNI carries names only; an address is verified against the certificate's IP entries.
                        let name = address == nil ? key.host : nil
                        try pipeline.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    // Without the outbound header validator, for the reason `Gateway.setUp` gives.
                    try pipeline.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try pipeline.addHandler(UpstreamHandler())
                }
            }
        let connected: EventLoopFuture<any Channel>
        if let address {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: key.host, port: key.port)
        }
        connected.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    hosts[key, default: Host()].open -= 1
                    channel.close(promise: nil)
                    fail(lease, ChannelError.inappropriateOperationForState)
                    return
                }
                let connection = UpstreamConnection(key: key, channel: channel, handler: handler)
                handler.onIdleClose = { [weak self, weak connection] in
                    guard let self, let connection else { return }
                    self.forget(connection)
                }
                grant(connection, to: lease)
            case .failure(let error):
                hosts[key, default: Host()].open -= 1
                fail(lease, error)
                if let next = nextWaiting(key) { connect(next) }
            }
        }
    }

    private func grant(_ connection: UpstreamConnection, to lease: UpstreamLease) {
        if !lease.cancelled, let requester = lease.requester {
            requester.leaseGranted(connection)
        } else {
            release(connection, reusable: true)
        }
    }

    private func fail(_ lease: UpstreamLease, _ error: any Error) {
        guard !lease.cancelled, let requester = lease.requester else { return }
        requester.leaseFailed(error)
    }

    private func nextWaiting(_ key: UpstreamTarget.Key) -> UpstreamLease? {
        while let lease = hosts[key]?.waiting.popFirst() {
            if !lease.cancelled && lease.requester != nil { return lease }
        }
        return nil
    }

    /// Counts a connection as closed, once, and lets a waiting request have its place.
    private func forget(_ connection: UpstreamConnection) {
        let place = connection.place
        guard place != .gone else { return }
        connection.place = .gone
        if place == .idle, let index = hosts[connection.key]?.idle.firstIndex(where: { $0 === connection }) {
            hosts[connection.key]?.idle.remove(at: index)
        }
        hosts[connection.key, default: Host()].open -= 1
        if !closed, let next = nextWaiting(connection.key) { connect(next) }
    }
}
