/// Step 3 of the pipeline: the API whose base path is the longest prefix of the path, then,
/// when the API has an OpenAPI document, the operation by method and path template.
/// Refusals: 503 before the first reconcile, 404 (no API, a listing API, no operation), 405.
enum RouteStage {
    static func run(_ exchange: Exchange) throws(ProblemDetails) {
        guard let table = exchange.table else { throw .notReady() }
        let path = exchange.path
        guard let (route, rest) = table.route(for: path) else {
            if let listing = table.listing(for: path) { throw .listing(listing) }
            throw .noRoute(path)
        }
        exchange.route = route
        exchange.rest = rest
        let method = exchange.request.method.rawValue
        let operationPath = rest.isEmpty ? "/" : rest
        switch route.match(method: method, path: operationPath) {
        case .undescribed:
            break
        case .operation(let operation):
            exchange.operation = operation
        case .methodNotAllowed(let allowed):
            throw .methodNotAllowed(api: route.route.api, method: method, path: operationPath, allowed: allowed)
        case .noOperation:
            throw .noOperation(api: route.route.api, method: method, path: operationPath)
        }
    }
}
