/// Step 5 of the pipeline: an active entitlement of the consumer for the API, in force on
/// the day the request arrived, and for the operation called when the subscription lists
/// its operations. Refusal: 403 saying which.
enum AuthorizeStage {
    static func run(_ exchange: Exchange) throws(ProblemDetails) {
        guard let table = exchange.table, let route = exchange.route, let consumer = exchange.consumer else {
            throw .notReady()
        }
        let api = route.route.api
        guard let granted = table.active[consumer]?[api] else {
            if let inactive = table.snapshot.inactive[consumer]?[api] { throw .inactive(inactive) }
            throw .notSubscribed(consumer: consumer, api: api)
        }
        let today = exchange.request.receivedMilliseconds / 86_400_000
        if let lastDay = granted.lastDay, today > lastDay { throw .expired(granted.entitlement) }
        if let allowed = granted.operations {
            let operationPath = exchange.rest.isEmpty ? "/" : exchange.rest
            let name = exchange.operation?.name ?? "\(exchange.request.method.rawValue) \(operationPath)"
            guard let operationId = exchange.operation?.operationId, allowed.contains(operationId) else {
                throw .operationNotSubscribed(granted.entitlement, operation: name)
            }
        }
        exchange.granted = granted
    }
}
