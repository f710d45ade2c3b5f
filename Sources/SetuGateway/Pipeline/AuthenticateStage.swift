/// Step 4 of the pipeline: `X-APISETU-CLIENTID` and `X-APISETU-APIKEY`, each sent exactly
/// once; the key's SHA-256 compared in constant time with the credential's, and the
/// credential's dates checked by the UTC day the request arrived. Refusal: 401 with
/// `WWW-Authenticate`.
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
        guard let credential = table.credentials[clientId], credential.accepts(key: key) else {
            throw .invalidCredentials()
        }
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
