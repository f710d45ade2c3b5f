import HTTPTypes
import Hummingbird
import SetuEntitlements
import SetuHits

/// A refusal, answered as `application/problem+json` (RFC 9457).
///
/// `type` is stable (`urn:setu:problem:<slug>`), so clients can switch on it; `detail`
/// says in words what happened and what to do. The slug is also the hit log's
/// `deny:<slug>` decision.
public struct Problem: Error, Sendable, Equatable {
    /// The stable kind of refusal, e.g. `pending-approval`.
    public var slug: String
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A short summary, the same for every refusal of this kind.
    public var title: String
    /// What happened to this request and what to do about it.
    public var detail: String
    /// Extra response headers (`WWW-Authenticate`, `Allow`).
    public var headers: HTTPFields = [:]

    /// The RFC 9457 `type`.
    public var type: String { "urn:setu:problem:" + slug }

    /// The response body, with the request id so a caller can quote it.
    func body(requestId: String) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + detail.utf8.count)
        bytes.append(contentsOf: "{\"type\":".utf8)
        JSONString.append(type, to: &bytes)
        bytes.append(contentsOf: ",\"title\":".utf8)
        JSONString.append(title, to: &bytes)
        bytes.append(contentsOf: ",\"status\":\(status.code),\"detail\":".utf8)
        JSONString.append(detail, to: &bytes)
        bytes.append(contentsOf: ",\"request_id\":".utf8)
        JSONString.append(requestId, to: &bytes)
        bytes.append(contentsOf: "}\n".utf8)
        return ByteBuffer(bytes: bytes)
    }

    func response(requestId: String) -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        fields[.requestID] = requestId
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: body(requestId: requestId)))
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
    static let clientID = HTTPField.Name("X-APISETU-CLIENTID")!
    static let apiKey = HTTPField.Name("X-APISETU-APIKEY")!
    static let setuConsumer = HTTPField.Name("X-Setu-Consumer")!
    static let setuSubscription = HTTPField.Name("X-Setu-Subscription")!
    static let forwarded = HTTPField.Name("Forwarded")!
    static let wwwAuthenticate = HTTPField.Name("WWW-Authenticate")!
}

extension Problem {
    static let authenticate: HTTPFields = [.wwwAuthenticate: #"APISetu-Key realm="setu", headers="X-APISETU-CLIENTID X-APISETU-APIKEY""#]

    static func notReady() -> Problem {
        Problem(slug: "not-ready", status: .serviceUnavailable, title: "Not ready",
                detail: "The gateway has not loaded the marketplace yet; retry in a few seconds.",
                headers: [.retryAfter: "5"])
    }

    static func noRoute(_ path: Substring) -> Problem {
        Problem(slug: "no-route", status: .notFound, title: "No API here",
                detail: "No API is served under \(path). `setu catalog` lists each API's base path.")
    }

    static func listing(_ listing: GatewaySnapshot.Listing) -> Problem {
        let data = listing.url.map { "; its data is published at \($0)" } ?? ""
        return Problem(slug: "listing-api", status: .notFound, title: "Listing API",
                       detail: "\(listing.api) (\(listing.title)) is a listing API: it is listed for information only and the gateway never proxies it\(data).")
    }

    static func noOperation(api: String, method: String, path: Substring) -> Problem {
        Problem(slug: "no-operation", status: .notFound, title: "No such operation",
                detail: "\(api) has no operation at \(path). `setu catalog show \(api)` lists its operations.")
    }

    static func methodNotAllowed(api: String, method: String, path: Substring, allowed: [String]) -> Problem {
        Problem(slug: "method-not-allowed", status: .methodNotAllowed, title: "Method not allowed",
                detail: "\(api) does not accept \(method) at \(path); it accepts \(allowed.joined(separator: ", ")).",
                headers: [.allow: allowed.joined(separator: ", ")])
    }

    static func missingCredentials() -> Problem {
        Problem(slug: "missing-credentials", status: .unauthorized, title: "Credentials required",
                detail: "Send your client id in X-APISETU-CLIENTID and your API key in X-APISETU-APIKEY.",
                headers: authenticate)
    }

    static func invalidCredentials() -> Problem {
        Problem(slug: "invalid-credentials", status: .unauthorized, title: "Invalid credentials",
                detail: "The client id and API key do not match a registered credential. Check both headers; a new key is made with `setu keygen` and its hash committed in your consumer.yaml.",
                headers: authenticate)
    }

    static func credentialExpired(clientId: String, day: String) -> Problem {
        Problem(slug: "credential-expired", status: .unauthorized, title: "Credential expired",
                detail: "Credential \(clientId) was valid until \(day). Make a new key with `setu keygen` and commit its hash in your consumer.yaml.",
                headers: authenticate)
    }

    static func credentialNotYetValid(clientId: String, day: String) -> Problem {
        Problem(slug: "credential-not-yet-valid", status: .unauthorized, title: "Credential not yet valid",
                detail: "Credential \(clientId) is valid from \(day).", headers: authenticate)
    }

    static func notSubscribed(consumer: String, api: String) -> Problem {
        Problem(slug: "not-subscribed", status: .forbidden, title: "Not subscribed",
                detail: "\(consumer) has no subscription to \(api). Commit a Subscription under subscriptions/\(consumer)/ and ask an approver of \(api.split(separator: "/").first ?? "") to merge it.")
    }

    static func inactive(_ entitlement: Entitlement) -> Problem {
        let id = "\(entitlement.consumer)/\(entitlement.subscription)"
        let reason = entitlement.reason.map { ": \($0)" } ?? ""
        switch entitlement.state {
        case .pending:
            let publisher = entitlement.api.split(separator: "/").first ?? ""
            let approvers = entitlement.approvers.isEmpty ? "" : " (approvers: \(entitlement.approvers.joined(separator: ", ")))"
            return Problem(slug: "pending-approval", status: .forbidden, title: "Pending approval",
                           detail: "subscription \(id) is \(entitlement.reason ?? "waiting for an approver of \(publisher)")\(approvers)")
        case .expired:
            return Problem(slug: "subscription-expired", status: .forbidden, title: "Subscription expired",
                           detail: "subscription \(id) ended on \(entitlement.notAfter ?? "its notAfter date")\(reason). Renew it by extending notAfter in \(entitlement.path).")
        case .invalid, .active:
            return Problem(slug: "subscription-invalid", status: .forbidden, title: "Subscription not in force",
                           detail: "subscription \(id) is approved but not in force\(reason). Fix \(entitlement.path).")
        }
    }

    static func expired(_ entitlement: Entitlement) -> Problem {
        Problem(slug: "subscription-expired", status: .forbidden, title: "Subscription expired",
                detail: "subscription \(entitlement.consumer)/\(entitlement.subscription) ended on \(entitlement.notAfter ?? "its notAfter date"). Renew it by extending notAfter in \(entitlement.path).")
    }

    static func operationNotSubscribed(_ entitlement: Entitlement, operation: String) -> Problem {
        Problem(slug: "operation-not-subscribed", status: .forbidden, title: "Operation not in subscription",
                detail: "subscription \(entitlement.consumer)/\(entitlement.subscription) allows \((entitlement.operations ?? []).joined(separator: ", ")), not \(operation). Add it to operations in \(entitlement.path) and have it approved.")
    }

    static func bodyTooLarge(limit: Int) -> Problem {
        Problem(slug: "body-too-large", status: .contentTooLarge, title: "Request body too large",
                detail: "The request body is over the gateway's limit of \(limit) bytes.")
    }

    static func upstreamTimeout(api: String, milliseconds: Int) -> Problem {
        Problem(slug: "upstream-timeout", status: .gatewayTimeout, title: "Upstream timed out",
                detail: "\(api) did not answer within \(milliseconds) ms. Retry later; the publisher sets this timeout in the API's manifest.")
    }

    static func upstreamUnreachable(api: String, reason: String) -> Problem {
        Problem(slug: "upstream-unreachable", status: .badGateway, title: "Upstream unreachable",
                detail: "The gateway could not get an answer from \(api)'s upstream (\(reason)). Retry later.")
    }
}
