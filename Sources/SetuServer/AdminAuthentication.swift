import Crypto
import Foundation
import Hummingbird
import SetuPortal

/// Who may use the admin listener: anyone on this machine when it listens on loopback
/// without a token; otherwise whoever shows the token of `--admin-token-file`, as
/// `Authorization: Bearer <token>`, or as the cookie the sign-in form sets for a browser.
///
/// `/healthz` and `/readyz` stay open for load balancers; `/login` is the form.
///
/// Written here rather than with hummingbird-auth: there is one shared token and no user
/// store, and the cookie is a signed expiry that needs no session storage, which is a few
/// lines against that package's authenticator and session machinery.
struct AdminAuthenticator<Context: RequestContext>: RouterMiddleware {
    let token: String
    /// How long a browser stays signed in.
    static var sessionSeconds: Int64 { 12 * 3600 }
    static var cookieName: String { "setu_admin" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if ["/healthz", "/readyz", "/login", "/logout"].contains(path) || authorized(request) {
            return try await next(request, context)
        }
        // A browser asking for a page is sent to the form; anything else is told what to send.
        if request.method == .get, request.headers[.accept]?.contains("text/html") == true {
            let target = request.uri.description
            return Response(status: .seeOther, headers: [.location: "/login?next=" + Self.percentEncoded(target)])
        }
        return Response(
            status: .unauthorized,
            headers: [.wwwAuthenticate: "Bearer realm=\"setu admin\"", .contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(
                byteBuffer: ByteBuffer(string: "the admin listener needs its token: send Authorization: Bearer <the token in --admin-token-file>\n")))
    }

    /// Whether the request shows the token, or a cookie signed with it that has not expired.
    func authorized(_ request: Request) -> Bool {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            return Self.same(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces), token)
        }
        for cookie in request.headers[values: .cookie].flatMap({ $0.split(separator: ";") }) {
            let pair = cookie.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0] == Self.cookieName else { continue }
            if Self.validCookie(String(pair[1]), token: token, now: Int64(Date().timeIntervalSince1970)) { return true }
        }
        return false
    }

    /// `<expiry>.<HMAC-SHA256 of it, keyed by the token>`: valid until the expiry, or until
    /// the token changes.
    static func cookie(token: String, expires: Int64) -> String {
        "\(expires)." + signature(token: token, expires: expires)
    }

    static func validCookie(_ value: String, token: String, now: Int64) -> Bool {
        let parts = value.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let expires = Int64(parts[0]), expires > now else { return false }
        return same(String(parts[1]), signature(token: token, expires: expires))
    }

    private static func signature(token: String, expires: Int64) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("setu-admin:\(expires)".utf8), using: SymmetricKey(data: Data(token.utf8)))
        return code.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// Compares in time that depends on the lengths alone, so a wrong guess tells nothing of
    /// how much of it was right.
    static func same(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? "/"
    }
}

/// The sign-in form's routes: `GET /login` shows it, `POST /login` checks the token and sets
/// the cookie (`HttpOnly`, `Secure`, `SameSite=Strict`), `POST /logout` clears it.
enum AdminLogin {
    static func add(to router: Router<BasicRequestContext>, token: String) {
        router.get("/login") { request, _ in
            page(next: safeNext(request.uri.queryParameters.get("next")), error: nil, status: .ok)
        }
        router.post("/login") { request, context in
            let body = try await request.body.collect(upTo: 16 << 10)
            let form = URLComponents(string: "?" + String(buffer: body).replacingOccurrences(of: "+", with: "%20"))?.queryItems ?? []
            let given = form.first { $0.name == "token" }?.value ?? ""
            let next = safeNext(form.first { $0.name == "next" }?.value)
            guard AdminAuthenticator<BasicRequestContext>.same(given, token) else {
                context.logger.warning("admin sign-in refused: wrong token")
                return page(next: next, error: "That is not the admin token.", status: .unauthorized)
            }
            let seconds = AdminAuthenticator<BasicRequestContext>.sessionSeconds
            let value = AdminAuthenticator<BasicRequestContext>.cookie(token: token, expires: Int64(Date().timeIntervalSince1970) + seconds)
            return Response(
                status: .seeOther,
                headers: [
                    .location: next,
                    .setCookie: "\(AdminAuthenticator<BasicRequestContext>.cookieName)=\(value); Path=/; Max-Age=\(seconds); HttpOnly; Secure; SameSite=Strict",
                ])
        }
        router.post("/logout") { _, _ in
            Response(
                status: .seeOther,
                headers: [
                    .location: "/login",
                    .setCookie: "\(AdminAuthenticator<BasicRequestContext>.cookieName)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
                ])
        }
    }

    /// Only a path on this listener: never another site, so the form cannot be used to send
    /// someone elsewhere.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return "/dashboard" }
        return next
    }

    private static func page(next: String, error: String?, status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: Pages.login(next: next, error: error))))
    }
}
