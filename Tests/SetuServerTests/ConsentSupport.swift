import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SetuTestSupport
import _CryptoExtras

/// A consent provider for tests: real keys, tokens and artifacts signed with them, and a
/// JWKS served on loopback. Ed25519 and P-256 keys are in the manifest; the RSA key is
/// published only in the JWKS.
final class TestConsentProvider: @unchecked Sendable {
    static let issuer = "https://consent.test.example"
    static let audience = "setu-tests"
    static let partnerClient = "PARTNER-1"

    let ed25519 = Curve25519.Signing.PrivateKey()
    let p256 = P256.Signing.PrivateKey()
    private(set) var rsa: _RSA.Signing.PrivateKey
    private let lock = NSLock()
    private var _failing = false
    /// While true, the JWKS answers 500.
    var failing: Bool {
        get { lock.withLock { _failing } }
        set { lock.withLock { _failing = newValue } }
    }

    private var group: ServiceGroup?
    private var task: Task<Void, Error>?
    private(set) var port = 0

    init() throws {
        rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    /// Serves `/jwks.json` on a free loopback port.
    func start() async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: CallbackResponder { [self] (_: Request, _: BasicRequestContext) in
                guard !failing else { return Response(status: .internalServerError) }
                return Response(
                    status: .ok, headers: [.contentType: "application/jwk-set+json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: jwks)))
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "test-consent"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "test-consent"))
        let group = ServiceGroup(
            configuration: .init(
                services: [application], gracefulShutdownSignals: [],
                logger: Logger(label: "test-consent")))
        self.group = group
        task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        port = await iterator.next() ?? 0
    }

    func stop() async {
        await group?.triggerGracefulShutdown()
        _ = try? await task?.value
    }

    /// Replaces the RSA key the JWKS publishes (a provider's key rotation).
    func rotateRSA() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        lock.withLock { rsa = key }
    }

    /// The RSA key's id: from its digest, so a rotated key has a new one.
    var rsaKid: String {
        "rsa-" + SHA256.hash(data: lock.withLock { rsa }.publicKey.derRepresentation).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    var jwks: String {
        let key = lock.withLock { rsa }.publicKey
        let numbers = try! key.getKeyPrimitives()
        return
            #"{"keys":[{"kty":"RSA","kid":"\#(rsaKid)","alg":"RS256","use":"sig","n":"\#(Self.base64url(numbers.modulus))","e":"\#(Self.base64url(numbers.publicExponent))"},{"kty":"oct","kid":"ignored","k":"c2VjcmV0"}]}"#
    }

    /// The ConsentProvider manifest, with the given algorithm allow-list.
    func manifest(algorithms: [String] = ["EdDSA", "ES256", "RS256"], refresh: String = "1s") -> String {
        let edPEM =
            "-----BEGIN PUBLIC KEY-----\n"
            + (Data([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
            + ed25519.publicKey.rawRepresentation).base64EncodedString() + "\n-----END PUBLIC KEY-----"
        func block(_ pem: String) -> String { pem.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n") }
        return """
            apiVersion: setu/v1
            kind: ConsentProvider
            metadata: {name: test-consent}
            spec:
              displayName: Test consent service
              issuer: \(Self.issuer)
              audience: \(Self.audience)
              algorithms: [\(algorithms.joined(separator: ", "))]
              jwksURI: http://127.0.0.1:\(port)/jwks.json
              jwksRefresh: \(refresh)
              clockSkew: 30s
              maxLifetime: 1h
              keys:
                - kid: ed-1
                  alg: EdDSA
                  publicKey: |
            \(block(edPEM))
                - kid: ec-1
                  alg: ES256
                  publicKey: |
            \(block(p256.publicKey.pemRepresentation))

            """
    }

    /// The consumer manifest of an authorized partner whose tokens this provider issues.
    static func partner(key: String) -> String {
        """
        apiVersion: setu/v1
        kind: Consumer
        metadata: {name: partner}
        spec:
          type: authorized-partner
          displayName: Partner
          members: [{email: dev@partner.example}]
          credentials:
            - clientId: partner-keys
              keySHA256: \(sha256Hex(key))
          partner: {provider: test-consent, clientId: \(partnerClient)}

        """
    }

    /// Claims of a token that covers `hscer` of `cbse`, valid for ten minutes.
    func claims(_ changes: [String: Any?] = [:]) -> [String: Any] {
        let now = Int(Date().timeIntervalSince1970)
        var claims: [String: Any] = [
            "iss": Self.issuer, "aud": Self.audience, "iat": now - 5, "exp": now + 600, "jti": UUID().uuidString,
            "client_id": Self.partnerClient, "sub": "user-7d1e", "consent_id": "consent-" + UUID().uuidString.prefix(8),
            "data_provider": "cbse", "data_id": "hscer",
            "name": "Asha Verma", "email": "asha@example.in",
        ]
        for (key, value) in changes { claims[key] = value }
        return claims
    }

    /// A compact JWS over `claims`, signed as `alg` says (`none` and `HS256` too).
    func token(_ claims: [String: Any], alg: String = "EdDSA", kid: String? = nil) throws -> String {
        let kid = kid ?? ["EdDSA": "ed-1", "ES256": "ec-1", "RS256": rsaKid, "HS256": "ed-1", "none": "ed-1"][alg]!
        let header = Self.base64url(try JSONSerialization.data(withJSONObject: ["alg": alg, "kid": kid, "typ": "at+jwt"], options: [.sortedKeys]))
        let payload = Self.base64url(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        return header + "." + payload + "." + Self.base64url(try sign(Data((header + "." + payload).utf8), alg: alg))
    }

    /// API Setu's consentArtifact: `consent`, and a detached JWS over its RFC 8785 form.
    func artifact(_ consent: [String: Any], alg: String = "EdDSA") throws -> [String: Any] {
        let header = Self.base64url(
            try JSONSerialization.data(
                withJSONObject: ["alg": alg, "kid": alg == "EdDSA" ? "ed-1" : "ec-1"],
                options: [.sortedKeys]))
        // With sorted keys, no whitespace, unescaped slashes, integers and ASCII text, this
        // is RFC 8785's form: written apart from the gateway's own canonicaliser.
        let canonical = try JSONSerialization.data(withJSONObject: consent, options: [.sortedKeys, .withoutEscapingSlashes])
        let signature = try sign(Data((header + "." + Self.base64url(canonical)).utf8), alg: alg)
        return ["consent": consent, "signature": ["signature": header + ".." + Self.base64url(signature)]]
    }

    /// A consent that lets `cbse` share `hscer` with `client`, for the hour around now.
    static func consent(client: String, changes: [String: Any] = [:]) -> [String: Any] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let now = Date()
        var consent: [String: Any] = [
            "consentId": UUID().uuidString.lowercased(), "timestamp": formatter.string(from: now.addingTimeInterval(-60)),
            "dataConsumer": ["id": client], "dataProvider": ["id": "cbse"], "purpose": ["description": "Admission"],
            "user": ["idType": "AADHAAR", "idNumber": "999988887777", "mobile": "9876543210", "email": "asha@example.in"],
            "data": ["id": "hscer"],
            "permission": [
                "access": "VIEW",
                "dateRange": [
                    "from": formatter.string(from: now.addingTimeInterval(-60)),
                    "to": formatter.string(from: now.addingTimeInterval(1800)),
                ],
                "frequency": ["unit": "DAY", "value": 1, "repeats": 5],
            ],
        ]
        for (key, value) in changes { consent[key] = value }
        return consent
    }

    private func sign(_ input: Data, alg: String) throws -> Data {
        switch alg {
        case "EdDSA": return try ed25519.signature(for: input)
        case "ES256": return try p256.signature(for: input).rawRepresentation
        case "RS256": return try lock.withLock { rsa }.signature(for: input, padding: .insecurePKCS1v1_5).rawRepresentation
        // The classic confusion: an HMAC keyed with the public key, which anyone has.
        case "HS256":
            let key = SymmetricKey(data: Data(p256.publicKey.pemRepresentation.utf8))
            return Data(HMAC<SHA256>.authenticationCode(for: input, using: key))
        default: return Data()
        }
    }

    static func base64url(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
