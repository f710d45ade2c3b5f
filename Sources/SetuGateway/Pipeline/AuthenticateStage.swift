/// Step 4 of the pipeline: `X-APISETU-CLIENTID` and `X-APISETU-APIKEY`, each sent exactly
/// once; the key's SHA-256 compared in constant time with each credential's under the client
/// id (several while a key is rotated), and the matching credential's dates checked by the
/// UTC day the request arrived. Refusal: 401 with `WWW-Authenticate`.
enum AuthenticateStage {
    /// - Parameter tokens: the event loop's verified bearer tokens; nil verifies every one.
    static func run(_ exchange: Exchange, tokens: ConsentTokenCache?) throws(ProblemDetails) {
        guard let table = exchange.table else { throw .notReady() }
        var clientId: String?
        var key: String?
        var authorization: String?
        for (name, value) in exchange.request.headers where name.utf8.count == 18 || name.utf8.count == 16 || name.utf8.count == 13 {
            if name.utf8.count == 13 {
                guard HeaderName.equals(name, "authorization") else { continue }
                guard authorization == nil else { throw .repeatedCredentials("Authorization") }
                authorization = value
            } else if HeaderName.equals(name, "x-apisetu-clientid") {
                // Two client ids, or two keys, never authenticate a mix of them.
                guard clientId == nil else { throw .repeatedCredentials("X-APISETU-CLIENTID") }
                clientId = value
            } else if HeaderName.equals(name, "x-apisetu-apikey") {
                guard key == nil else { throw .repeatedCredentials("X-APISETU-APIKEY") }
                key = value
            }
        }
        let bearer = authorization.flatMap(bearerToken)
        if clientId == nil && key == nil, let bearer {
            // An authorized partner: the consent token is its credential.
            let consent = try verify(bearer, table: table, tokens: tokens, now: exchange.request.receivedMilliseconds)
            guard let consumer = table.partnerConsumers[consent.provider + "\n" + consent.client] else {
                throw .consentRefused(
                    ConsentFailure(
                        "consent-foreign",
                        "The token was issued to client \(consent.client) of \(consent.provider), which is no authorized partner of this marketplace."),
                    form: .token)
            }
            exchange.clientId = consent.client
            exchange.consumer = consumer
            exchange.consent = consent
            return
        }
        guard let clientId, let key, !clientId.isEmpty, !key.isEmpty else { throw .missingCredentials() }
        // Every key of the client id is compared, so the time taken tells nothing of which matched.
        var matched: CompiledCredential?
        let candidates = table.credentials[clientId] ?? []
        let digest = candidates.isEmpty ? [] : CompiledCredential.digest(of: key)
        for candidate in candidates where candidate.accepts(digest: digest) { matched = candidate }
        guard let credential = matched else { throw .invalidCredentials() }
        exchange.clientId = clientId
        exchange.consumer = credential.credential.consumer
        let today = exchange.request.receivedMilliseconds / 86_400_000
        if let lastDay = credential.lastDay, today > lastDay {
            throw .credentialExpired(clientId: clientId, day: credential.credential.notAfter ?? "")
        }
        if let firstDay = credential.firstDay, today < firstDay {
            throw .credentialNotYetValid(clientId: clientId, day: credential.credential.notBefore ?? "")
        }
        // A partner that also sends keys: the token is the call's consent, bound in the consent
        // stage. To an API that takes no consent, the header is only stripped, as ever.
        if let bearer, let route = exchange.route?.route, route.consent != .none {
            exchange.consent = try verify(bearer, table: table, tokens: tokens, now: exchange.request.receivedMilliseconds)
        }
    }

    /// The token of `Bearer <token>` (RFC 6750 §2.1), the scheme in any case.
    private static func bearerToken(_ value: String) -> Substring? {
        let text = Substring(value)
        guard text.utf8.count > 7, HeaderName.equals(String(text.prefix(7)), "bearer ") else { return nil }
        let token = text.dropFirst(7).drop { $0 == " " }
        return token.isEmpty ? nil : token
    }

    private static func verify(
        _ token: Substring, table: RoutingTable, tokens: ConsentTokenCache?,
        now: Int64
    ) throws(ProblemDetails) -> VerifiedConsent {
        if let cached = tokens?.lookup(token, nowMilliseconds: now) { return cached }
        do {
            let consent = try table.consent.verifyToken(token, nowMilliseconds: now)
            tokens?.store(token, consent, nowMilliseconds: now)
            return consent
        } catch {
            throw .consentRefused(error, form: .token)
        }
    }
}
