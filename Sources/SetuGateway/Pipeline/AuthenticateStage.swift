/// Step 4 of the pipeline: `X-APISETU-CLIENTID` and `X-APISETU-APIKEY`, each sent exactly
/// once; the key's SHA-256 compared in constant time with each credential's under the client
/// id (several while a key is rotated), and the matching credential's dates checked by the
/// UTC day the request arrived. Refusal: 401 with `WWW-Authenticate`.
enum AuthenticateStage {
    static func run(_ exchange: Exchange) throws(Problem) {
        guard let table = exchange.table else { throw .notReady() }
        var clientId: String?
        var key: String?
        for (name, value) in exchange.request.headers where name.utf8.count == 18 || name.utf8.count == 16 {
            if HeaderName.equals(name, "x-apisetu-clientid") {
                // Two client ids, or two keys, never authenticate a mix of them.
                guard clientId == nil else { throw .repeatedCredentials("X-APISETU-CLIENTID") }
                clientId = value
            } else if HeaderName.equals(name, "x-apisetu-apikey") {
                guard key == nil else { throw .repeatedCredentials("X-APISETU-APIKEY") }
                key = value
            }
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
    }
}
