import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SetuGateway

/// Fetches the JWKS of every consent provider that names a `jwksURI`, each on its own
/// interval, off the request path. A failed fetch keeps the last keys and is retried with
/// back-off (2 s, 4 s, … up to the provider's interval); the daemon's log says so, and
/// says again when fetching works again.
struct JWKSService: Service {
    let gateway: Gateway
    let logger: Logger

    func run() async throws {
        var due: [String: ContinuousClock.Instant] = [:]
        var failures: [String: Int] = [:]
        while true {
            let now = ContinuousClock.now
            for source in gateway.jwksSources {
                // Keyed by address too, so a provider that moves its JWKS is fetched at once.
                let key = source.provider + " " + source.uri
                guard due[key].map({ $0 <= now }) ?? true else { continue }
                let interval = Duration.milliseconds(source.refreshMilliseconds)
                do {
                    let count = try await fetch(source.uri, provider: source.provider)
                    if failures[key, default: 0] > 0 || due[key] == nil {
                        logger.info("consent provider \(source.provider): \(count) keys from \(source.uri)")
                    }
                    failures[key] = 0
                    due[key] = now + interval
                } catch {
                    let failed = failures[key, default: 0] + 1
                    failures[key] = failed
                    let wait = min(interval, .seconds(1 << min(failed, 12)))
                    logger.warning(
                        "cannot fetch the JWKS of consent provider \(source.provider) from \(source.uri): \(error); keeping its last keys, trying again in \(wait)"
                    )
                    due[key] = now + wait
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                return
            }
        }
    }

    private func fetch(_ uri: String, provider: String) async throws -> Int {
        var request = HTTPClientRequest(url: uri)
        request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard response.status == .ok else { throw GatewayError(message: "it answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 1 << 20)
        return try gateway.takeJWKS(Data(buffer: body), provider: provider)
    }
}
