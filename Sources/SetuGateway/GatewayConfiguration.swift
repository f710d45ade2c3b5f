/// How the gateway treats requests and connections, parsed once at the edge by `setu serve`.
///
/// Every limit has a default that suits a public API gateway; each is answered with its own
/// status and problem document when a request passes it.
public struct GatewayConfiguration: Sendable, Equatable {
    /// A request body over this size is refused with 413, also when it is sent chunked.
    public var maxRequestBodyBytes: Int
    /// Request bodies up to this size are read whole, and checked, before the upstream
    /// sees anything; longer ones are streamed once this much has arrived.
    public var bufferedRequestBodyBytes: Int
    /// A body the gateway must judge (against a JSON schema, or for a consent artifact) is
    /// read whole, up to this size; a longer one is refused with 413.
    public var maxInspectedBodyBytes: Int
    /// A request target longer than this is refused with 414.
    public var maxURIBytes: Int
    /// The header lines of a request (names and values) may hold this many bytes; more is 431.
    public var maxHeaderBytes: Int
    /// A request may have this many header lines; more is 431.
    public var maxHeaderCount: Int
    /// How long a client may take to send a request's head, from its first byte (or from
    /// the connection's start, for its first request); slower is 408.
    public var headerTimeoutMilliseconds: Int
    /// How long a request body may pause between two reads; longer is 408.
    public var bodyTimeoutMilliseconds: Int
    /// How long a keep-alive connection may sit with no request before it is closed; also
    /// how long a client may leave an answer unread before the connection is dropped.
    public var idleTimeoutMilliseconds: Int
    /// Open client connections at most; further connections get 503 and are closed.
    public var maxConnections: Int
    /// How long connecting to an upstream may take; longer is 502.
    public var connectTimeoutMilliseconds: Int
    /// Connections to one upstream host, open at once, on each event loop.
    public var connectionsPerUpstream: Int
    /// An unused upstream connection is closed after this long, or sooner when the
    /// upstream's `Keep-Alive: timeout=` says it closes them sooner.
    public var upstreamIdleTimeoutMilliseconds: Int
    /// PEM files of certificate authorities trusted for HTTPS upstreams, beyond the system's.
    public var upstreamCertificateAuthorities: [String]
    /// Whether each event loop keeps verified bearer tokens until their `exp`, rather than
    /// checking the signature on every call.
    public var cachesConsentTokens = true
    /// Whether `/-` and the paths under `/-/` are the portal's; set by the gateway when it has one.
    public internal(set) var servesPortal = false

    /// - Parameters:
    ///   - maxRequestBodyBytes: 10 MiB unless given.
    ///   - bufferedRequestBodyBytes: 64 KiB unless given.
    ///   - maxInspectedBodyBytes: 1 MiB unless given.
    ///   - maxURIBytes: 8 KiB unless given.
    ///   - maxHeaderBytes: 32 KiB unless given.
    ///   - maxHeaderCount: 100 unless given.
    ///   - headerTimeoutMilliseconds: 10 s unless given.
    ///   - bodyTimeoutMilliseconds: 30 s unless given.
    ///   - idleTimeoutMilliseconds: 60 s unless given.
    ///   - maxConnections: 16,384 unless given.
    ///   - connectTimeoutMilliseconds: 5 s unless given.
    ///   - connectionsPerUpstream: 256 unless given.
    ///   - upstreamIdleTimeoutMilliseconds: 4 s unless given, below the 5 s that common
    ///     servers (Node.js, Apache) keep an idle connection.
    ///   - upstreamCertificateAuthorities: none unless given.
    public init(
        maxRequestBodyBytes: Int = 10 << 20, bufferedRequestBodyBytes: Int = 64 << 10, maxInspectedBodyBytes: Int = 1 << 20,
        maxURIBytes: Int = 8 << 10, maxHeaderBytes: Int = 32 << 10, maxHeaderCount: Int = 100,
        headerTimeoutMilliseconds: Int = 10_000, bodyTimeoutMilliseconds: Int = 30_000,
        idleTimeoutMilliseconds: Int = 60_000, maxConnections: Int = 16_384,
        connectTimeoutMilliseconds: Int = 5000, connectionsPerUpstream: Int = 256,
        upstreamIdleTimeoutMilliseconds: Int = 4000, upstreamCertificateAuthorities: [String] = []
    ) {
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.bufferedRequestBodyBytes = bufferedRequestBodyBytes
        self.maxInspectedBodyBytes = maxInspectedBodyBytes
        self.maxURIBytes = maxURIBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.headerTimeoutMilliseconds = headerTimeoutMilliseconds
        self.bodyTimeoutMilliseconds = bodyTimeoutMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.maxConnections = maxConnections
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.connectionsPerUpstream = connectionsPerUpstream
        self.upstreamIdleTimeoutMilliseconds = upstreamIdleTimeoutMilliseconds
        self.upstreamCertificateAuthorities = upstreamCertificateAuthorities
    }
}
