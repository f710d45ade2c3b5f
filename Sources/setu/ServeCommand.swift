import ArgumentParser
import Foundation
import Logging
import SetuGateway
import SetuHits
import SetuManifest
import SetuServer
import Synchronization

/// Options of the daemon, shared by `setu serve` and `setu demo`.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where the gateway listens: host:port (port 0 picks a free one).", valueName: "address"))
    var listen: String = "127.0.0.1:8080"

    @Option(name: .long, help: ArgumentHelp("Where the admin listener (health, status, metrics, reconcile) listens.", valueName: "address"))
    var admin: String = "127.0.0.1:9090"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A file holding the token the admin listener asks for (Authorization: Bearer, or a browser's sign-in); needed beyond loopback.",
            valueName: "file"))
    var adminTokenFile: String?

    @Option(name: .long, help: ArgumentHelp("A PEM certificate chain for the admin listener to serve HTTPS with (with --admin-tls-key).", valueName: "file"))
    var adminTLSCert: String?

    @Option(name: .long, help: ArgumentHelp("The PEM private key of --admin-tls-cert.", valueName: "file"))
    var adminTLSKey: String?

    @Option(name: .long, help: ArgumentHelp("Time between reconciles: 500ms, 10s, 5m.", valueName: "duration"))
    var interval: String = "10s"

    @Option(name: .long, help: ArgumentHelp("The largest request body the gateway passes on, in bytes (413 beyond).", valueName: "bytes"))
    var maxBodyBytes: Int = 10 << 20

    @Option(name: .long, help: ArgumentHelp("Request bodies up to this size are read whole before the upstream sees them.", valueName: "bytes"))
    var bufferBodyBytes: Int = 64 << 10

    @Option(
        name: .long,
        help: ArgumentHelp("Bodies checked against a JSON schema or for a consent artifact are read whole up to this size (413 beyond).", valueName: "bytes"))
    var maxCheckedBodyBytes: Int = 1 << 20

    @Option(name: .customLong("max-uri-bytes"), help: ArgumentHelp("The longest request target, in bytes (414 beyond).", valueName: "bytes"))
    var maxURIBytes: Int = 8 << 10

    @Option(name: .long, help: ArgumentHelp("The most bytes of header names and values in a request (431 beyond).", valueName: "bytes"))
    var maxHeaderBytes: Int = 32 << 10

    @Option(name: .long, help: ArgumentHelp("The most header lines in a request (431 beyond).", valueName: "count"))
    var maxHeaders: Int = 100

    @Option(name: .long, help: ArgumentHelp("How long a request's head may take to arrive (408 beyond).", valueName: "duration"))
    var headerTimeout: String = "10s"

    @Option(name: .long, help: ArgumentHelp("How long a request body may pause (408 beyond).", valueName: "duration"))
    var bodyTimeout: String = "30s"

    @Option(name: .long, help: ArgumentHelp("How long an idle keep-alive connection, or an unread answer, is kept.", valueName: "duration"))
    var idleTimeout: String = "60s"

    @Option(name: .long, help: ArgumentHelp("The most client connections open at once (503 beyond).", valueName: "count"))
    var maxConnections: Int = 16_384

    @Option(name: .long, help: ArgumentHelp("How long connecting to an upstream may take (502 beyond).", valueName: "duration"))
    var connectTimeout: String = "5s"

    @Option(name: .long, help: ArgumentHelp("The most connections to one upstream host, per event loop.", valueName: "count"))
    var upstreamConnections: Int = 256

    @Option(name: .long, help: ArgumentHelp("How long an unused upstream connection is kept.", valueName: "duration"))
    var upstreamIdleTimeout: String = "4s"

    @Option(
        name: .customLong("upstream-ca"),
        help: ArgumentHelp("A PEM file of certificate authorities to trust for HTTPS upstreams, besides the system's (repeatable).", valueName: "file"))
    var upstreamCA: [String] = []

    @Flag(name: .long, help: "Check a bearer token's signature on every call, rather than once per event loop until its exp.")
    var noConsentCache = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where plans' rate limits and quotas are counted: memory (this process), or redis://[[user]:password@]host[:port][/db], shared by every replica given the same URL.",
            valueName: "store"))
    var limits: String = "memory"

    @Option(name: .long, help: ArgumentHelp("How long a request waits for Redis before its plan's failMode decides it.", valueName: "duration"))
    var limitsTimeout: String = "100ms"

    @Option(name: .long, help: ArgumentHelp("Start a new hit file once the current one reaches this many bytes.", valueName: "bytes"))
    var hitsMaxFileBytes: Int = 64 << 20

    @Option(name: .long, help: ArgumentHelp("Delete hit files older than this many days.", valueName: "days"))
    var hitsRetentionDays: Int = 30

    func validate() throws {
        guard ServeConfiguration.Address(listen) != nil else {
            throw ValidationError("--listen '\(listen)' is not host:port, e.g. 127.0.0.1:8080")
        }
        guard ServeConfiguration.Address(admin) != nil else {
            throw ValidationError("--admin '\(admin)' is not host:port, e.g. 127.0.0.1:9090")
        }
        guard let milliseconds = ManifestDuration.milliseconds(interval), milliseconds > 0 else {
            throw ValidationError("--interval '\(interval)' is not a duration such as 500ms, 10s or 5m")
        }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        for (option, value) in [
            ("--buffer-body-bytes", bufferBodyBytes), ("--max-checked-body-bytes", maxCheckedBodyBytes),
            ("--max-uri-bytes", maxURIBytes),
            ("--max-header-bytes", maxHeaderBytes), ("--max-headers", maxHeaders),
            ("--max-connections", maxConnections), ("--upstream-connections", upstreamConnections),
        ] {
            guard value > 0 else { throw ValidationError("\(option) must be positive") }
        }
        for (option, value) in [
            ("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout),
            ("--idle-timeout", idleTimeout), ("--connect-timeout", connectTimeout),
            ("--upstream-idle-timeout", upstreamIdleTimeout),
        ] {
            guard let milliseconds = ManifestDuration.milliseconds(value), milliseconds > 0 else {
                throw ValidationError("\(option) '\(value)' is not a duration such as 500ms, 10s or 5m")
            }
        }
        for file in upstreamCA where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("--upstream-ca '\(file)' is not a readable file")
        }
        if let adminTokenFile {
            guard let token = Self.token(in: adminTokenFile) else {
                throw ValidationError("--admin-token-file '\(adminTokenFile)' is not a readable file")
            }
            guard token.count >= 16, !token.contains(where: \.isWhitespace) else {
                throw ValidationError(
                    "--admin-token-file '\(adminTokenFile)' must hold one token of at least 16 characters, without spaces; make one with `openssl rand -hex 32 > \(adminTokenFile)`"
                )
            }
        }
        guard (adminTLSCert == nil) == (adminTLSKey == nil) else {
            throw ValidationError("--admin-tls-cert and --admin-tls-key go together: give both, or neither")
        }
        for file in [adminTLSCert, adminTLSKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("'\(file)' is not a readable file")
        }
        if limits != "memory" {
            do {
                _ = try LimitStoreAddress(url: limits)
            } catch {
                throw ValidationError("--limits: \(error.message); or give --limits memory to count in this process")
            }
        }
        guard let limitsTimeoutMilliseconds = ManifestDuration.milliseconds(limitsTimeout), limitsTimeoutMilliseconds > 0 else {
            throw ValidationError("--limits-timeout '\(limitsTimeout)' is not a duration such as 50ms or 1s")
        }
        guard hitsMaxFileBytes >= 4096 else { throw ValidationError("--hits-max-file-bytes must be at least 4096") }
        guard hitsRetentionDays >= 1 else { throw ValidationError("--hits-retention-days must be at least 1") }
    }

    /// The file's text without the line end around it; nil when it cannot be read.
    static func token(in file: String) -> String? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The gateway's limits and timeouts, once `validate` has passed.
    var gateway: GatewayConfiguration {
        func milliseconds(_ duration: String) -> Int { ManifestDuration.milliseconds(duration)! }
        var configuration = GatewayConfiguration(
            maxRequestBodyBytes: maxBodyBytes, bufferedRequestBodyBytes: bufferBodyBytes,
            maxInspectedBodyBytes: maxCheckedBodyBytes, maxURIBytes: maxURIBytes,
            maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaders, headerTimeoutMilliseconds: milliseconds(headerTimeout),
            bodyTimeoutMilliseconds: milliseconds(bodyTimeout), idleTimeoutMilliseconds: milliseconds(idleTimeout),
            maxConnections: maxConnections, connectTimeoutMilliseconds: milliseconds(connectTimeout),
            connectionsPerUpstream: upstreamConnections, upstreamIdleTimeoutMilliseconds: milliseconds(upstreamIdleTimeout),
            upstreamCertificateAuthorities: upstreamCA)
        configuration.cachesConsentTokens = !noConsentCache
        return configuration
    }

    func configuration(source: ServeConfiguration.Source, branch: String, state: String, trustRoot: String?) -> ServeConfiguration {
        ServeConfiguration(
            source: source, branch: branch, stateDirectory: state,
            listen: ServeConfiguration.Address(listen)!, admin: ServeConfiguration.Address(admin)!,
            intervalSeconds: Double(ManifestDuration.milliseconds(interval)!) / 1000, trustRoot: trustRoot,
            gateway: gateway,
            hits: HitLogConfiguration(directory: state + "/hits", maxFileBytes: hitsMaxFileBytes, retentionDays: hitsRetentionDays),
            adminToken: adminTokenFile.flatMap(Self.token(in:)),
            adminTLS: adminTLSCert.flatMap { cert in adminTLSKey.map { (cert, $0) } },
            limits: limits == "memory" ? nil : try? LimitStoreAddress(url: limits),
            limitsTimeoutMilliseconds: ManifestDuration.milliseconds(limitsTimeout)!)
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Follow a marketplace repository and serve its APIs through the gateway.",
        discussion: """
            Reconciles at start, every --interval, on POST /reconcile to the admin
            listener and on SIGHUP: replays the branch's history, derives who may
            call what, and swaps a new snapshot into the gateway without a restart.
            A failed reconcile keeps the last good snapshot serving. Every request
            is logged to <state>/hits/ (SIGUSR1 reopens the file). SIGTERM or SIGINT
            stops gracefully: requests in flight finish and every hit is written.

            Exit codes: 0 stopped by a signal, 2 a usage error, or a listener or
            file that cannot be opened.

            Examples:
              setu serve --repo . --state /var/lib/setu
              setu serve --repo https://git.example/marketplace.git \\
                         --branch main --listen 0.0.0.0:8080
            """)

    @Option(
        name: .long, help: ArgumentHelp("The marketplace repository: a path, or a URL to fetch into a mirror in the state directory.", valueName: "path|url"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp("The branch to serve.", valueName: "branch"))
    var branch: String = "main"

    @Option(name: .long, help: ArgumentHelp("The daemon's folder: replay state, mirror, status.json, hits/.", valueName: "dir"))
    var state: String = ".setu"

    @Option(name: .long, help: ArgumentHelp("The commit history is trusted from (default: the root commit).", valueName: "commit"))
    var trustRoot: String?

    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        let configuration = daemon.configuration(
            source: ServeConfiguration.Source(repo), branch: branch,
            state: state, trustRoot: trustRoot)
        bootstrapLogging()
        try await runDaemon(configuration) { _ in }
    }
}

/// Logs go to standard error at info level; standard output carries what the user reads.
func bootstrapLogging() {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .info
        return handler
    }
}

/// Runs the daemon with logs on standard error and the listening addresses on standard output.
func runDaemon(_ configuration: ServeConfiguration, whenListening: @escaping @Sendable ([String: ServeConfiguration.Address]) -> Void) async throws {
    let logger = Logger(label: "setu")
    let listening = ListeningAddresses(whenListening: whenListening)
    let stuckAfter = Duration.seconds(10)
    let daemon = Daemon(
        configuration: configuration,
        onListening: { name, address in
            let scheme = name == "admin" && configuration.adminTLS != nil ? "https" : "http"
            write("\(name) listening on \(scheme)://\(address)\n")
            listening.add(name, address)
        }, stuckAfter: stuckAfter,
        onStuck: { error in
            FileHandle.standardError.write(Data("error: setu serve stopped: \(error) (the other services did not stop within \(stuckAfter))\n".utf8))
            Foundation.exit(2)
        })
    do {
        try await daemon.run(logger: logger)
    } catch let error as HitLogError {
        throw CLIFailure("\(error)")
    } catch let error as ReconcileError {
        throw CLIFailure(error.message)
    } catch let error as ListenError {
        throw CLIFailure(error.message)
    } catch let error as GatewayError {
        throw CLIFailure(error.message)
    } catch {
        throw CLIFailure("setu serve stopped: \(error)")
    }
}

/// Collects the bound addresses and reports once both listeners are up.
final class ListeningAddresses: Sendable {
    private let addresses = Mutex<[String: ServeConfiguration.Address]>([:])
    private let whenListening: @Sendable ([String: ServeConfiguration.Address]) -> Void

    init(whenListening: @escaping @Sendable ([String: ServeConfiguration.Address]) -> Void) {
        self.whenListening = whenListening
    }

    func add(_ name: String, _ address: ServeConfiguration.Address) {
        let complete: [String: ServeConfiguration.Address]? = addresses.withLock { addresses in
            addresses[name] = address
            return addresses.count == 2 ? addresses : nil
        }
        if let complete { whenListening(complete) }
    }
}
