import NIOCore
import SetuManifest

/// Step 8 of the pipeline: the request against its operation's OpenAPI description — path,
/// query and header parameters, the `Content-Type`, and a JSON body against its schema.
/// `enforce` refuses with 400 `invalid-request` (415 for a media type the operation does not
/// take), naming the first failing parameter or JSON pointer; `report` passes the request on
/// and notes the failure in the hit.
enum ValidationStage {
    static func run(_ exchange: Exchange, body: RequestBody) throws(ProblemDetails) {
        guard let operation = exchange.operation, let check = operation.check, check.mode != .off else { return }
        let path = exchange.rest.split(separator: "/", omittingEmptySubsequences: true)
        let headers = exchange.request.headers
        let bodyExpected: Bool =
            switch exchange.body {
            case .none: false
            case .length(let length): length > 0
            case .chunked: body.buffer == nil || body.length > 0
            }
        guard
            let failure = check.firstFailure(
                path: path, query: exchange.query, headers: headers,
                contentType: headers.first(name: "content-type"), body: body,
                bodyExpected: bodyExpected)
        else { return }
        guard check.mode == .enforce else {
            exchange.validationFailure = failure.note
            return
        }
        throw .invalidRequest(api: exchange.route?.route.api ?? "", operation: operation.name, failure)
    }
}
