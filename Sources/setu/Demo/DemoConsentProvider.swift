@preconcurrency import Crypto
import Foundation
import Hummingbird
import SetuGateway

/// The demo's sample consent provider, standing in for MeriPehchaan on loopback: it
/// publishes a JWKS with a key made at start, and issues consent tokens for the demo's
/// authorized partner, as a real provider would after the user consented.
///
/// `GET /meripehchaan/jwks.json` serves the key; `GET /meripehchaan/token?client_id=…&
/// data_provider=…&data_id=…` answers a token signed with it (EdDSA), valid ten minutes.
struct DemoConsentProvider: Sendable {
    static let prefix = "/meripehchaan/"
    static let kid = "demo-1"

    let issuer: String
    let audience: String
    private let key = Curve25519.Signing.PrivateKey()

    init(issuer: String, audience: String) {
        self.issuer = issuer
        self.audience = audience
    }

    func answer(path: String, query: Parameters) -> Response {
        switch path.dropFirst(Self.prefix.count) {
        case "jwks.json":
            let jwks =
                #"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"\#(Self.kid)","alg":"EdDSA","use":"sig","x":"\#(Base64URL.encode(key.publicKey.rawRepresentation))"}]}"#
            return Response(
                status: .ok, headers: [.contentType: "application/jwk-set+json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: jwks)))
        case "token":
            guard let client = query["client_id"].map(String.init), let provider = query["data_provider"].map(String.init),
                let data = query["data_id"].map(String.init), let token = try? token(client: client, provider: provider, data: data)
            else {
                return Response(
                    status: .badRequest, headers: [.contentType: "text/plain"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: "give client_id, data_provider and data_id\n")))
            }
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: token)))
        default:
            return Response(status: .notFound)
        }
    }

    /// A consent token: RFC 9068's claims, and the consent's own (`consent_id`, `data_provider`, `data_id`).
    func token(client: String, provider: String, data: String) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["alg": "EdDSA", "kid": Self.kid, "typ": "at+jwt"]
        let claims: [String: Any] = [
            "iss": issuer, "aud": audience, "iat": now, "exp": now + 600, "jti": UUID().uuidString.lowercased(),
            "client_id": client, "sub": UUID().uuidString.lowercased(), "consent_id": UUID().uuidString.lowercased(),
            "data_provider": provider, "data_id": data,
        ]
        let input =
            Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) + "."
            + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        return input + "." + Base64URL.encode(try key.signature(for: Data(input.utf8)))
    }
}
