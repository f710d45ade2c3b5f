import SetuFormats
import SetuHits
import SetuManifest

/// Step 6 of the pipeline, for APIs whose calls need the user's consent: a verified consent
/// (the bearer token the authenticate stage verified, or the `consentArtifact` in the body)
/// that was given to the calling client, lets the route's publisher share the operation
/// called, has not been used for this transaction before, and has uses left in its
/// `permission.frequency`. A required consent that is missing is 403 `consent-required`.
enum ConsentStage {
    static func run(_ exchange: Exchange, body: RequestBody, ledger: ConsentLedger, nowMilliseconds now: Int64) throws(ProblemDetails) {
        guard let table = exchange.table, let route = exchange.route?.route, route.consent != .none else { return }
        let takesArtifact = exchange.operation?.carriesConsentArtifact ?? false
        var document: JSONValue?
        if case .success(let parsed) = body.json { document = parsed }
        var consent = exchange.consent
        if consent == nil, takesArtifact, let artifact = document?["consentArtifact"] {
            do {
                consent = try table.consent.verifyArtifact(artifact, nowMilliseconds: now)
            } catch {
                throw .consentRefused(error, form: .artifact)
            }
        }
        guard let consent else {
            guard route.consent == .required else { return }
            throw .consentRequired(api: route.api, providers: table.consent.providers.keys.sorted(), artifact: takesArtifact)
        }
        // The consent was given to this client: a stolen one is worth nothing to another.
        switch consent.form {
        case .token:
            let partner = table.snapshot.partners[exchange.consumer ?? ""]
            guard let partner, partner.provider == consent.provider, partner.clientId == consent.client else {
                throw .consentRefused(
                    ConsentFailure(
                        "consent-foreign",
                        "The token was issued to client \(consent.client) of \(consent.provider), not to \(exchange.consumer ?? "this client")."),
                    form: .token)
            }
        case .artifact:
            guard consent.client == exchange.clientId else {
                throw .consentRefused(
                    ConsentFailure("consent-foreign", "The consent's dataConsumer.id is \(consent.client), not the calling client \(exchange.clientId ?? "")."),
                    form: .artifact)
            }
        }
        let dataId = exchange.operation?.operationId ?? route.api
        guard consent.dataProvider == route.publisher, consent.dataId == dataId else {
            throw .consentNotCovering(consent, api: route.api, publisher: route.publisher, dataId: dataId)
        }
        // A transaction is one use: its txnId, or, for a call without one, the token itself.
        let transaction =
            document?["txnId"]?.stringValue.map { "txn:" + $0 }
            ?? consent.tokenId.map { "jti:" + $0 } ?? "consent:" + consent.consentId
        do {
            try ledger.use(
                client: exchange.clientId ?? consent.client, consumer: exchange.consumer ?? "", transaction: transaction,
                consent: consent, nowMilliseconds: now)
        } catch {
            switch error {
            case .replayed(let first):
                throw .consentRefused(
                    ConsentFailure(
                        "consent-replayed",
                        "This client already sent \(transaction.split(separator: ":", maxSplits: 1).joined(separator: " ")) at \(Timestamp.rfc3339(milliseconds: first)); each transaction may use a consent once within 24 h."
                    ),
                    form: consent.form)
            case .exhausted(let repeats, let retryAfter):
                throw .consentExhausted(consent, repeats: repeats, retryAfter: retryAfter)
            }
        }
        exchange.consentId = consent.consentId
    }
}

/// Verified bearer tokens of one event loop, until their `exp`: a token presented again
/// costs a dictionary lookup instead of a signature check. Emptied when a new routing table
/// (and with it a new set of keys) is installed.
final class ConsentTokenCache {
    private var entries: [Substring: VerifiedConsent] = [:]
    private static let capacity = 10_000

    func lookup(_ token: Substring, nowMilliseconds now: Int64) -> VerifiedConsent? {
        guard let consent = entries[token] else { return nil }
        guard consent.expiresMilliseconds > now else {
            entries[token] = nil
            return nil
        }
        return consent
    }

    func store(_ token: Substring, _ consent: VerifiedConsent, nowMilliseconds now: Int64) {
        if entries.count >= Self.capacity {
            entries = entries.filter { $0.value.expiresMilliseconds > now }
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        }
        // Kept apart from the request's own bytes.
        entries[Substring(String(token))] = consent
    }

    func removeAll() {
        entries.removeAll()
    }
}
