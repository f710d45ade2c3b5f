import SetuGateway
import SetuHits

/// Everything `setu serve` is told, parsed once by the command line.
public struct ServeConfiguration: Sendable {
    /// Where the marketplace repository is.
    public enum Source: Sendable, Equatable {
        /// A repository on this machine, read in place.
        case local(path: String)
        /// A remote repository, fetched into a mirror in the state directory before each reconcile.
        case remote(url: String)

        /// Reads `--repo`: a URL (`file://` included) or `user@host:path` is remote and
        /// mirrored; anything else is a local path, read in place.
        public init(_ argument: String) {
            if argument.contains("://") || (argument.contains("@") && argument.contains(":") && !argument.hasPrefix("/")) {
                self = .remote(url: argument)
            } else {
                self = .local(path: argument)
            }
        }
    }

    /// A host and port to listen on.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        /// A name or an address; `0.0.0.0` for every interface.
        public var host: String
        /// 0 picks a free port.
        public var port: Int

        /// Reads `127.0.0.1:8080`, `[::1]:8080` or `:8080` (all interfaces).
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host.isEmpty ? "0.0.0.0" : host
            self.port = port
        }

        /// An address from its parts.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, with IPv6 hosts in brackets.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Where the marketplace repository is.
    public var source: Source
    /// The branch whose history is served.
    public var branch: String
    /// Holds the replay state, the mirror of a remote, `status.json` and `hits/`.
    public var stateDirectory: String
    /// Where the gateway listens.
    public var listen: Address
    /// Where the admin listener (health, status, metrics, reconcile) listens.
    public var admin: Address
    /// Seconds between reconciles.
    public var intervalSeconds: Double
    /// The commit history is trusted from, when not the root commit.
    public var trustRoot: String?
    /// How the gateway treats requests.
    public var gateway: GatewayConfiguration
    /// Where and how hits are written.
    public var hits: HitLogConfiguration
    /// The token the admin listener asks for (`--admin-token-file`); none on loopback.
    public var adminToken: String?
    /// A PEM certificate chain and private key the admin listener serves HTTPS with.
    public var adminTLS: (certificateFile: String, keyFile: String)?
    /// The Redis that counts plans for every replica (`--limits`); nil counts them in this process.
    public var limits: LimitStoreAddress?
    /// How long a request waits for Redis before its plan's fail mode decides it.
    public var limitsTimeoutMilliseconds: Int

    /// Why the admin listener may not listen where it is told, if so: beyond loopback it
    /// needs a token, as it shows people's emails and reconciles on request.
    public var adminExposure: String? {
        guard adminToken == nil, !Self.isLoopback(admin.host) else { return nil }
        return "the admin listener on \(admin) would answer anyone who can reach it, and /status shows people's emails: "
            + "give --admin-token-file FILE holding a token of at least 16 characters (e.g. from `openssl rand -hex 32`), "
            + "or keep --admin on 127.0.0.1"
    }

    /// Whether a host is this machine alone: `localhost`, 127.0.0.0/8 or ::1.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// - Parameters:
    ///   - branch: `main` unless given.
    ///   - listen: `127.0.0.1:8080` unless given.
    ///   - admin: `127.0.0.1:9090` unless given.
    ///   - intervalSeconds: 10 unless given.
    ///   - limitsTimeoutMilliseconds: 100 ms unless given.
    public init(
        source: Source, branch: String = "main", stateDirectory: String,
        listen: Address = Address(host: "127.0.0.1", port: 8080),
        admin: Address = Address(host: "127.0.0.1", port: 9090),
        intervalSeconds: Double = 10, trustRoot: String? = nil,
        gateway: GatewayConfiguration = .init(), hits: HitLogConfiguration? = nil, adminToken: String? = nil,
        adminTLS: (certificateFile: String, keyFile: String)? = nil, limits: LimitStoreAddress? = nil,
        limitsTimeoutMilliseconds: Int = 100
    ) {
        self.limits = limits
        self.limitsTimeoutMilliseconds = limitsTimeoutMilliseconds
        self.adminToken = adminToken
        self.adminTLS = adminTLS
        self.source = source
        self.branch = branch
        self.stateDirectory = stateDirectory
        self.listen = listen
        self.admin = admin
        self.intervalSeconds = intervalSeconds
        self.trustRoot = trustRoot
        self.gateway = gateway
        self.hits = hits ?? HitLogConfiguration(directory: stateDirectory + "/hits")
    }
}
