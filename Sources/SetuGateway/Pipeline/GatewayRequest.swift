import Foundation
import NIOCore
import NIOHTTP1
import SetuEntitlements
import SetuManifest

/// A request as the pipeline sees it: what the client sent, whatever carried it. The
/// transport makes one from a request head; the stages read it and never see a channel.
public struct GatewayRequest: Sendable {
    /// The request method.
    public var method: HTTPMethod
    /// The request target exactly as sent: origin-form, absolute-form or other.
    public var target: String
    /// The HTTP version the client spoke.
    public var version: HTTPVersion
    /// The header lines, in order, as sent.
    public var headers: HTTPHeaders
    /// The client's address, when the transport knows it.
    public var clientIP: String?
    /// When the head arrived, in milliseconds since 1970 (UTC): the hit's `ts`, and the day
    /// against which credentials and subscriptions expire.
    public var receivedMilliseconds: Int64

    /// A request from its parts.
    public init(
        method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPHeaders, clientIP: String?,
        receivedMilliseconds: Int64
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.clientIP = clientIP
        self.receivedMilliseconds = receivedMilliseconds
    }
}

/// How a request's body is framed, as the framing stage read it from the head.
enum RequestBodyFraming: Equatable {
    /// No body.
    case none
    /// `Content-Length` bytes.
    case length(Int)
    /// Chunked: the length is known only at its end.
    case chunked
}

/// One request on its way through the pipeline: the request, the table it is judged by,
/// and what each stage found out. The hit record is made from it once the answer is sent.
/// A class, since the stages and the connection hand it around many times per request.
final class Exchange {
    /// What the client sent.
    let request: GatewayRequest
    /// The routing table in force when the request arrived; nil before the first reconcile.
    let table: RoutingTable?
    /// Kept from `X-Request-ID` if well-formed, otherwise made (the request id stage).
    var requestId = ""
    /// The path the request is routed by, without its query string (the framing stage).
    var path: Substring = ""
    /// The query string, without its `?`.
    var query: Substring?
    /// The `Host` the client sent, checked (the framing stage).
    var host: Substring?
    /// How the body is framed (the framing stage).
    var body: RequestBodyFraming = .none
    /// Whether the client waits for `100 Continue` before it sends the body.
    var expectsContinue = false
    /// The API the path leads to, and the rest of the path below its base path (the route stage).
    var route: CompiledRoute?
    /// Whether the path is the portal's (`/-` or under `/-/`): answered by the portal, not routed.
    var portal = false
    var rest: Substring = ""
    /// The OpenAPI operation called, when the API describes its operations.
    var operation: CompiledOperation?
    /// The client id sent, once it names a registered credential (the authenticate stage).
    var clientId: String?
    /// The consumer the credentials belong to, once authenticated.
    var consumer: String?
    /// The active entitlement that admits the call, and its plan's counters (the authorize stage).
    var granted: CompiledEntitlement?
    var entitlement: Entitlement? { granted?.entitlement }
    /// The consent token presented as `Authorization: Bearer`, verified (the authenticate stage).
    var consent: VerifiedConsent?
    /// The consent the call was admitted under, for the hit log (the consent stage).
    var consentId: String?
    /// Where the request failed the OpenAPI document, when the API only reports failures.
    var validationFailure: String?
    /// Headers every answer to the request carries, whether proxied or refused: the plan's
    /// `RateLimit-Policy` and `RateLimit` (the limit stage).
    var responseHeaders: [(String, String)] = []

    /// Whether the body must be read whole before the stages after authorize can judge it.
    var needsWholeBody: Bool {
        if operation?.check?.needsBody == true { return true }
        // The consent stage reads a consent artifact, or a bearer call's txnId, from the body.
        guard let route, route.route.consent != .none else { return false }
        return consent != nil || (operation?.carriesConsentArtifact ?? false)
    }

    init(request: GatewayRequest, table: RoutingTable?) {
        self.request = request
        self.table = table
    }

    /// The path the hit log records: what was routed, or the target up to its query when
    /// the framing stage refused it first.
    var recordedPath: Substring {
        if !path.isEmpty { return path }
        let target = Substring(request.target)
        return target[..<(target.firstIndex(of: "?") ?? target.endIndex)]
    }
}

/// A request body read whole, parsed as JSON at most once for the stages that look into it.
final class RequestBody {
    let buffer: ByteBuffer?

    init(_ buffer: ByteBuffer?) {
        self.buffer = buffer
    }

    /// The body's length; 0 when it was not read whole.
    var length: Int { buffer?.readableBytes ?? 0 }

    /// The body as JSON, or why it is not; nil when no body was read.
    lazy var json: Result<JSONValue, JSONBodyError>? = {
        guard let buffer, buffer.readableBytes > 0 else { return nil }
        return buffer.withUnsafeReadableBytes { bytes in
            do throws(JSONParseError) {
                return .success(try JSONValue(jsonBytes: bytes))
            } catch {
                return .failure(JSONBodyError(reason: error.description))
            }
        }
    }()
}

/// Why a body is not JSON, in the parser's words.
struct JSONBodyError: Error {
    var reason: String
}
