import NIOCore
import NIOHTTP1
import SetuEntitlements
import SetuFormats
import SetuHits

/// A refusal, answered as `application/problem+json` (RFC 9457).
///
/// `type` is stable (`urn:setu:problem:<slug>`), so clients can switch on it; `detail`
/// says in words what happened and what to do. The hit log's decision is `deny:<slug>`
/// for the client's side of things and `error:<slug>` when the upstream failed.
public struct ProblemDetails: Error, Sendable, Equatable {
    /// Whose fault a refusal is: the request's, or the upstream's.
    public enum Fault: Sendable, Equatable {
        /// The request was refused: `deny:<slug>` in the hit log.
        case request
        /// The upstream failed: `error:<slug>` in the hit log.
        case upstream
        /// The gateway could not decide, for want of a store it needs: `error:<slug>`.
        case gateway
    }

    /// The stable kind of refusal, e.g. `pending-approval`.
    public var slug: String
    /// The HTTP status.
    public var status: HTTPResponseStatus
    /// A short summary, the same for every refusal of this kind.
    public var title: String
    /// What happened to this request and what to do about it.
    public var detail: String
    /// Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    public var headers: [(String, String)] = []
    /// Whether the request, the upstream or the gateway is to blame.
    public var fault: Fault = .request
    /// Whether the connection is closed after the answer: its framing can no longer be trusted.
    public var closesConnection = false
    /// Further members of the problem document (RFC 9457 §3.2), e.g. the failing `pointer`.
    public var extensions: [(String, String)] = []

    /// The RFC 9457 `type`.
    public var type: String { "urn:setu:problem:" + slug }

    /// `deny:<slug>` or `error:<slug>`, as the hit log records it.
    public var decision: String { (fault == .request ? "deny:" : "error:") + slug }

    /// The response body, with the request id so a caller can quote it.
    public func body(requestId: String) -> ByteBuffer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + detail.utf8.count)
        bytes.append(contentsOf: "{\"type\":".utf8)
        JSONString.append(type, to: &bytes)
        bytes.append(contentsOf: ",\"title\":".utf8)
        JSONString.append(title, to: &bytes)
        bytes.append(contentsOf: ",\"status\":\(status.code),\"detail\":".utf8)
        JSONString.append(detail, to: &bytes)
        for (name, value) in extensions {
            bytes.append(UInt8(ascii: ","))
            JSONString.append(name, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            JSONString.append(value, to: &bytes)
        }
        bytes.append(contentsOf: ",\"request_id\":".utf8)
        JSONString.append(requestId, to: &bytes)
        bytes.append(contentsOf: "}\n".utf8)
        return ByteBuffer(bytes: bytes)
    }

    /// Equal when every field is, headers in order.
    public static func == (lhs: ProblemDetails, rhs: ProblemDetails) -> Bool {
        lhs.slug == rhs.slug && lhs.status == rhs.status && lhs.title == rhs.title && lhs.detail == rhs.detail
            && lhs.headers.elementsEqual(rhs.headers, by: ==) && lhs.fault == rhs.fault
            && lhs.closesConnection == rhs.closesConnection && lhs.extensions.elementsEqual(rhs.extensions, by: ==)
    }
}

extension ProblemDetails {
    static let authenticate = [
        ("WWW-Authenticate", #"APISetu-Key realm="setu", headers="X-APISETU-CLIENTID X-APISETU-APIKEY""#),
        ("WWW-Authenticate", #"Bearer realm="setu""#),
    ]

    // MARK: Framing and limits

    static func badRequest(_ detail: String) -> ProblemDetails {
        ProblemDetails(
            slug: "bad-request", status: .badRequest, title: "Malformed request",
            detail: detail, closesConnection: true)
    }

    static func badHost(_ detail: String) -> ProblemDetails {
        ProblemDetails(slug: "bad-host", status: .badRequest, title: "Bad Host header", detail: detail, closesConnection: true)
    }

    static func badBody(_ detail: String) -> ProblemDetails {
        ProblemDetails(slug: "bad-body", status: .badRequest, title: "Malformed request body", detail: detail, closesConnection: true)
    }

    static func unsupportedMethod(_ method: String) -> ProblemDetails {
        ProblemDetails(
            slug: "unsupported-method", status: .notImplemented, title: "Method not supported",
            detail: "The gateway does not proxy \(method) requests: it is not a forward proxy or a tunnel.",
            closesConnection: true)
    }

    static func upgradeRefused(_ protocols: String) -> ProblemDetails {
        ProblemDetails(
            slug: "upgrade-refused", status: .badRequest, title: "Protocol upgrade refused",
            detail: "The gateway does not switch protocols (Upgrade: \(protocols)); send plain HTTP/1.1 requests.",
            closesConnection: true)
    }

    static func expectationFailed(_ expectation: String) -> ProblemDetails {
        ProblemDetails(
            slug: "expectation-failed", status: .expectationFailed, title: "Expectation not supported",
            detail: "The gateway supports only Expect: 100-continue, not \(expectation).", closesConnection: true)
    }

    static func uriTooLong(limit: Int) -> ProblemDetails {
        ProblemDetails(
            slug: "uri-too-long", status: .uriTooLong, title: "Request target too long",
            detail: "The request target is over the gateway's limit of \(limit) bytes.", closesConnection: true)
    }

    static func headersTooLarge(_ detail: String) -> ProblemDetails {
        ProblemDetails(
            slug: "headers-too-large", status: .requestHeaderFieldsTooLarge, title: "Request headers too large",
            detail: detail, closesConnection: true)
    }

    static func bodyTooLarge(limit: Int, checked: Bool = false) -> ProblemDetails {
        ProblemDetails(
            slug: "body-too-large", status: .payloadTooLarge, title: "Request body too large",
            detail: checked
                ? "The request body is over the \(limit) bytes the gateway reads to check a body against the API's OpenAPI document or consent."
                : "The request body is over the gateway's limit of \(limit) bytes.")
    }

    static func headerTimeout(milliseconds: Int) -> ProblemDetails {
        ProblemDetails(
            slug: "header-timeout", status: .requestTimeout, title: "Request head too slow",
            detail: "The request's head did not arrive whole within \(milliseconds) ms.", closesConnection: true)
    }

    static func bodyTimeout(milliseconds: Int) -> ProblemDetails {
        ProblemDetails(
            slug: "body-timeout", status: .requestTimeout, title: "Request body stalled",
            detail: "The request body stopped arriving for \(milliseconds) ms before it was complete.",
            closesConnection: true)
    }

    static func tooManyConnections(limit: Int) -> ProblemDetails {
        ProblemDetails(
            slug: "too-many-connections", status: .serviceUnavailable, title: "Too many connections",
            detail: "The gateway has \(limit) connections open, its limit; retry shortly.",
            headers: [("Retry-After", "1")], closesConnection: true)
    }

    static func badPath(_ path: Substring) -> ProblemDetails {
        ProblemDetails(
            slug: "bad-path", status: .badRequest, title: "Bad path",
            detail: "The path \(path) has dot segments, `;` parameters, or encoded slashes, dots or NUL, which the gateway does not pass on.")
    }

    static func badTarget(_ detail: String) -> ProblemDetails {
        ProblemDetails(slug: "bad-target", status: .badRequest, title: "Bad request target", detail: detail)
    }

    // MARK: The marketplace

    static func notReady() -> ProblemDetails {
        ProblemDetails(
            slug: "not-ready", status: .serviceUnavailable, title: "Not ready",
            detail: "The gateway has not loaded the marketplace yet; retry in a few seconds.",
            headers: [("Retry-After", "5")])
    }

    static func noRoute(_ path: Substring) -> ProblemDetails {
        ProblemDetails(
            slug: "no-route", status: .notFound, title: "No API here",
            detail: "No API is served under \(path). `setu catalog` lists each API's base path.")
    }

    static func listing(_ listing: GatewaySnapshot.Listing) -> ProblemDetails {
        let data = listing.url.map { "; its data is published at \($0)" } ?? ""
        return ProblemDetails(
            slug: "listing-api", status: .notFound, title: "Listing API",
            detail: "\(listing.api) (\(listing.title)) is a listing API: it is listed for information only and the gateway never proxies it\(data).")
    }

    static func noOperation(api: String, method: String, path: Substring) -> ProblemDetails {
        ProblemDetails(
            slug: "no-operation", status: .notFound, title: "No such operation",
            detail: "\(api) has no operation at \(path). `setu catalog show \(api)` lists its operations.")
    }

    static func methodNotAllowed(api: String, method: String, path: Substring, allowed: [String]) -> ProblemDetails {
        ProblemDetails(
            slug: "method-not-allowed", status: .methodNotAllowed, title: "Method not allowed",
            detail: "\(api) does not accept \(method) at \(path); it accepts \(allowed.joined(separator: ", ")).",
            headers: [("Allow", allowed.joined(separator: ", "))])
    }

    static func missingCredentials() -> ProblemDetails {
        ProblemDetails(
            slug: "missing-credentials", status: .unauthorized, title: "Credentials required",
            detail:
                "Send your client id in X-APISETU-CLIENTID and your API key in X-APISETU-APIKEY; an authorized partner may send its consent token as Authorization: Bearer instead.",
            headers: authenticate)
    }

    static func invalidCredentials() -> ProblemDetails {
        ProblemDetails(
            slug: "invalid-credentials", status: .unauthorized, title: "Invalid credentials",
            detail:
                "The client id and API key do not match a registered credential. Check both headers; a new key is made with `setu keygen` and its hash committed in your consumer.yaml.",
            headers: authenticate)
    }

    static func repeatedCredentials(_ header: String) -> ProblemDetails {
        ProblemDetails(
            slug: "invalid-credentials", status: .unauthorized, title: "Invalid credentials",
            detail: "\(header) was sent more than once; send each credential header exactly once.",
            headers: authenticate)
    }

    static func credentialExpired(clientId: String, day: String) -> ProblemDetails {
        ProblemDetails(
            slug: "credential-expired", status: .unauthorized, title: "Credential expired",
            detail: "Credential \(clientId) was valid until \(day). Make a new key with `setu keygen` and commit its hash in your consumer.yaml.",
            headers: authenticate)
    }

    static func credentialNotYetValid(clientId: String, day: String) -> ProblemDetails {
        ProblemDetails(
            slug: "credential-not-yet-valid", status: .unauthorized, title: "Credential not yet valid",
            detail: "Credential \(clientId) is valid from \(day).", headers: authenticate)
    }

    static func notSubscribed(consumer: String, api: String) -> ProblemDetails {
        ProblemDetails(
            slug: "not-subscribed", status: .forbidden, title: "Not subscribed",
            detail:
                "\(consumer) has no subscription to \(api). Commit a Subscription under subscriptions/\(consumer)/ and ask an approver of \(api.split(separator: "/").first ?? "") to merge it."
        )
    }

    static func inactive(_ entitlement: Entitlement) -> ProblemDetails {
        let id = "\(entitlement.consumer)/\(entitlement.subscription)"
        let reason = entitlement.reason.map { ": \($0)" } ?? ""
        switch entitlement.state {
        case .pending:
            let publisher = entitlement.api.split(separator: "/").first ?? ""
            let approvers = entitlement.approvers.isEmpty ? "" : " (approvers: \(entitlement.approvers.joined(separator: ", ")))"
            return ProblemDetails(
                slug: "pending-approval", status: .forbidden, title: "Pending approval",
                detail: "subscription \(id) is \(entitlement.reason ?? "waiting for an approver of \(publisher)")\(approvers)")
        case .expired:
            return ProblemDetails(
                slug: "subscription-expired", status: .forbidden, title: "Subscription expired",
                detail:
                    "subscription \(id) ended on \(entitlement.notAfter ?? "its notAfter date")\(reason). Renew it by extending notAfter in \(entitlement.path)."
            )
        case .invalid, .active:
            return ProblemDetails(
                slug: "subscription-invalid", status: .forbidden, title: "Subscription not in force",
                detail: "subscription \(id) is approved but not in force\(reason). Fix \(entitlement.path).")
        }
    }

    static func expired(_ entitlement: Entitlement) -> ProblemDetails {
        ProblemDetails(
            slug: "subscription-expired", status: .forbidden, title: "Subscription expired",
            detail:
                "subscription \(entitlement.consumer)/\(entitlement.subscription) ended on \(entitlement.notAfter ?? "its notAfter date"). Renew it by extending notAfter in \(entitlement.path)."
        )
    }

    static func operationNotSubscribed(_ entitlement: Entitlement, operation: String) -> ProblemDetails {
        ProblemDetails(
            slug: "operation-not-subscribed", status: .forbidden, title: "Operation not in subscription",
            detail:
                "subscription \(entitlement.consumer)/\(entitlement.subscription) allows \((entitlement.operations ?? []).joined(separator: ", ")), not \(operation). Add it to operations in \(entitlement.path) and have it approved."
        )
    }

    // MARK: Consent

    /// A consent that failed verification or binding: 401 with `WWW-Authenticate` for a
    /// bearer token (RFC 6750 §3.1), 403 for a consent artifact.
    static func consentRefused(_ failure: ConsentFailure, form: VerifiedConsent.Form) -> ProblemDetails {
        guard form == .token else {
            return ProblemDetails(slug: failure.slug, status: .forbidden, title: "Consent artifact refused", detail: failure.message)
        }
        let description = String(
            failure.message.unicodeScalars.filter { $0.isASCII && $0 != "\"" && $0 != "\\" && $0.value >= 0x20 }
                .map(Character.init))
        return ProblemDetails(
            slug: failure.slug, status: .unauthorized, title: "Consent token refused", detail: failure.message,
            headers: [("WWW-Authenticate", "Bearer realm=\"setu\", error=\"invalid_token\", error_description=\"\(description)\"")])
    }

    static func consentRequired(api: String, providers: [String], artifact: Bool) -> ProblemDetails {
        let token =
            "an authorized partner's consent token from \(providers.isEmpty ? "a consent provider" : providers.joined(separator: " or ")) as Authorization: Bearer"
        let forms = artifact ? token + ", or a consentArtifact signed by the consent provider in the request body" : token
        return ProblemDetails(
            slug: "consent-required", status: .forbidden, title: "Consent required",
            detail: "\(api) returns users' documents and needs the user's consent on every call: send \(forms).")
    }

    static func consentNotCovering(_ consent: VerifiedConsent, api: String, publisher: String, dataId: String) -> ProblemDetails {
        ProblemDetails(
            slug: "consent-not-covering", status: .forbidden, title: "Consent does not cover this call",
            detail:
                "Consent \(consent.consentId) lets \(consent.dataProvider) share \(consent.dataId); this call asks \(publisher) for \(dataId) (\(api)). Ask the user for a consent to this data."
        )
    }

    static func consentExhausted(_ consent: VerifiedConsent, repeats: Int64, retryAfter: Int64) -> ProblemDetails {
        ProblemDetails(
            slug: "consent-use-exhausted", status: .tooManyRequests, title: "Consent used up",
            detail:
                "Consent \(consent.consentId) allows \(repeats) \(repeats == 1 ? "use" : "uses") per period of its permission.frequency, and they are spent; it allows more in \(retryAfter) s.",
            headers: [("Retry-After", String(retryAfter))])
    }

    // MARK: Request validation

    static func invalidRequest(api: String, operation: String, _ failure: RequestCheckFailure) -> ProblemDetails {
        var problem = ProblemDetails(
            slug: "invalid-request", status: .badRequest, title: "Request does not match the API's OpenAPI document",
            detail: "\(failure.place) \(failure.message) (operation \(operation) of \(api)); see the API's OpenAPI document.")
        if failure.unsupportedMediaType {
            problem.slug = "unsupported-media-type"
            problem.status = .unsupportedMediaType
            problem.title = "Media type not accepted"
        }
        problem.extensions = [(failure.parameter == nil ? "pointer" : "parameter", failure.parameter ?? failure.pointer)]
        return problem
    }

    // MARK: Plan limits

    static func rateLimited(api: String, plan: String, retryAfter: Int64) -> ProblemDetails {
        ProblemDetails(
            slug: "rate-limited", status: .tooManyRequests, title: "Rate limit reached",
            detail: "Calls to \(api) on plan \(plan) came faster than the plan allows; retry in \(retryAfter) s. RateLimit-Policy states the plan's limits.",
            headers: [("Retry-After", String(retryAfter))])
    }

    static func quotaExhausted(api: String, plan: CompiledPlan, retryAfter: Int64) -> ProblemDetails {
        let period = plan.quotaPeriod == .month ? "month" : "day"
        return ProblemDetails(
            slug: "quota-exhausted", status: .tooManyRequests, title: "Quota used up",
            detail:
                "The \(plan.quota ?? 0) calls a \(period) that plan \(plan.name) allows for \(api) are used up; the quota starts again in \(retryAfter) s (UTC \(period) boundary), or subscribe on a larger plan.",
            headers: [("Retry-After", String(retryAfter))])
    }

    static func limitsUnavailable(api: String, plan: String) -> ProblemDetails {
        ProblemDetails(
            slug: "limits-unavailable", status: .serviceUnavailable, title: "Limits unavailable",
            detail:
                "The gateway cannot reach the store that counts plan \(plan)'s limits, and the plan refuses calls to \(api) it cannot count (failMode: closed). Retry in a few seconds.",
            headers: [("Retry-After", "1")], fault: .gateway)
    }

    // MARK: The upstream

    static func upstreamTimeout(api: String, milliseconds: Int) -> ProblemDetails {
        ProblemDetails(
            slug: "upstream-timeout", status: .gatewayTimeout, title: "Upstream timed out",
            detail: "\(api) did not answer within \(milliseconds) ms. Retry later; the publisher sets this timeout in the API's manifest.",
            fault: .upstream)
    }

    static func upstreamUnreachable(api: String) -> ProblemDetails {
        ProblemDetails(
            slug: "upstream-unreachable", status: .badGateway, title: "Upstream unreachable",
            detail: "The gateway could not get an answer from \(api)'s upstream. Retry later.", fault: .upstream)
    }

    static func upstreamInvalid(api: String) -> ProblemDetails {
        ProblemDetails(
            slug: "upstream-invalid", status: .badGateway, title: "Upstream answer malformed",
            detail: "\(api)'s upstream sent an answer the gateway cannot pass on. Retry later.", fault: .upstream)
    }
}
