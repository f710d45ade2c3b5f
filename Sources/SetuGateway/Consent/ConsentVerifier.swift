import Foundation
import SetuEntitlements
import SetuFormats
import SetuHits
import SetuManifest

/// A consent whose signature, issuer, audience and times were verified: what it allows,
/// and nothing that identifies the user.
struct VerifiedConsent: Sendable {
    enum Form: Sendable { case token, artifact }

    /// How often the consent may be used: `repeats` times per `value` `unit`s.
    struct Frequency: Sendable, Equatable {
        var unit: String
        var value: Int64
        var repeats: Int64
    }

    let form: Form
    let provider: String
    let consentId: String
    /// The client it was given to: the token's `client_id`/`azp`, the artifact's `dataConsumer.id`.
    let client: String
    /// The publisher it lets data come from.
    let dataProvider: String
    /// The operation (or API) it covers.
    let dataId: String
    /// The token's `jti`.
    let tokenId: String?
    /// When it stops being valid, in milliseconds since 1970: `exp`, or `dateRange.to`.
    let expiresMilliseconds: Int64
    let frequency: Frequency?
}

/// Why a consent was refused: a stable slug and what to fix.
struct ConsentFailure: Error, Equatable {
    var slug: String
    var message: String

    init(_ slug: String, _ message: String) {
        self.slug = slug
        self.message = message
    }
}

/// A consent provider compiled for verification.
struct CompiledProvider: Sendable {
    let name: String
    let issuer: String
    let audience: String
    /// The algorithms its consents may use; never `none` or an HMAC.
    let algorithms: Set<String>
    /// Its keys by `kid`: the manifest's, then its JWKS's.
    let keys: [String: ConsentKey]
    let skewMilliseconds: Int64
    let maxLifetimeMilliseconds: Int64
}

/// Verifies consents in both forms against the consent providers of a routing table.
struct ConsentVerifier: Sendable {
    let providers: [String: CompiledProvider]
    private let byIssuer: [String: CompiledProvider]
    /// Keys that could not be read, to be logged when the table is installed.
    let problems: [String]

    /// - Parameter fetched: keys each provider's JWKS served, by provider name.
    init(_ providers: [String: ConsentProvider], fetched: [String: [ConsentKey]]) {
        var compiled: [String: CompiledProvider] = [:]
        var problems: [String] = []
        for (name, provider) in providers {
            var keys: [String: ConsentKey] = [:]
            for key in provider.keys {
                do {
                    keys[key.kid] = try ConsentKey(kid: key.kid, algorithm: key.algorithm, pem: key.publicKeyPEM)
                } catch {
                    problems.append("consent provider \(name): key \(key.kid) \(error); consents signed with it are refused")
                }
            }
            for key in fetched[name] ?? [] where keys[key.kid] == nil { keys[key.kid] = key }
            let algorithms = provider.algorithms.isEmpty ? Set(provider.keys.map(\.algorithm)) : Set(provider.algorithms)
            compiled[name] = CompiledProvider(
                name: name, issuer: provider.issuer, audience: provider.audience,
                algorithms: algorithms.intersection(["EdDSA", "ES256", "RS256"]), keys: keys,
                skewMilliseconds: Int64(provider.clockSkewMilliseconds),
                maxLifetimeMilliseconds: Int64(provider.maxLifetimeMilliseconds))
        }
        self.providers = compiled
        byIssuer = Dictionary(compiled.values.map { ($0.issuer, $0) }, uniquingKeysWith: { first, _ in first })
        self.problems = problems
    }

    // MARK: Bearer tokens

    /// Verifies an RFC 9068-style access token carrying consent claims.
    func verifyToken(_ token: Substring, nowMilliseconds now: Int64) throws(ConsentFailure) -> VerifiedConsent {
        guard let jws = CompactJWS(token) else {
            throw ConsentFailure("consent-malformed", "The bearer token is not a JWS in compact form (three base64url parts).")
        }
        guard let claims = try? JSONValue(json: jws.payload), case .object = claims else {
            throw ConsentFailure("consent-malformed", "The bearer token's payload is not a JSON object.")
        }
        guard let issuer = claims["iss"]?.stringValue, let provider = byIssuer[issuer] else {
            throw ConsentFailure(
                "consent-wrong-issuer",
                "The token's issuer \(claims["iss"]?.stringValue.map { "'\($0)'" } ?? "(none)") is not a consent provider of this marketplace.")
        }
        let key = try self.key(for: jws, in: provider)
        guard key.verifies(jws.signature, over: jws.signingInput) else {
            throw ConsentFailure("consent-bad-signature", "The token's signature does not verify with key \(key.kid) of \(provider.name).")
        }
        let audiences: [String] =
            switch claims["aud"] {
            case .string(let one): [one]
            case .array(let many): many.compactMap(\.stringValue)
            default: []
            }
        guard audiences.contains(provider.audience) else {
            throw ConsentFailure(
                "consent-wrong-audience",
                "The token is for audience \(audiences.isEmpty ? "(none)" : audiences.joined(separator: ", ")), not \(provider.audience).")
        }
        func seconds(_ name: String) -> Int64? { claims[name]?.numberValue.flatMap(Self.milliseconds(seconds:)) }
        guard let expires = seconds("exp"), let issued = seconds("iat") else {
            throw ConsentFailure("consent-malformed", "The token must carry exp and iat.")
        }
        try checkTimes(provider, from: max(issued, seconds("nbf") ?? issued), issued: issued, to: expires, now: now, what: "token")
        guard let client = claims["client_id"]?.stringValue ?? claims["azp"]?.stringValue else {
            throw ConsentFailure("consent-malformed", "The token names no client (client_id or azp).")
        }
        guard let consentId = claims["consent_id"]?.stringValue, let dataProvider = claims["data_provider"]?.stringValue,
            let dataId = claims["data_id"]?.stringValue, let tokenId = claims["jti"]?.stringValue
        else {
            throw ConsentFailure("consent-malformed", "The token must carry consent_id, data_provider, data_id and jti.")
        }
        return VerifiedConsent(
            form: .token, provider: provider.name, consentId: consentId, client: client, dataProvider: dataProvider,
            dataId: dataId, tokenId: tokenId, expiresMilliseconds: expires,
            frequency: Self.frequency(claims["frequency"]))
    }

    // MARK: Consent artifacts

    /// Verifies API Setu's `consentArtifact`: a detached JWS over the RFC 8785 form of `consent`.
    func verifyArtifact(_ artifact: JSONValue, nowMilliseconds now: Int64) throws(ConsentFailure) -> VerifiedConsent {
        guard let consent = artifact["consent"], case .object = consent,
            let signature = artifact["signature"]?["signature"]?.stringValue
        else {
            throw ConsentFailure("consent-malformed", "consentArtifact must hold consent and signature.signature.")
        }
        guard let jws = CompactJWS(signature, detachedPayload: CanonicalJSON.encode(consent)) else {
            throw ConsentFailure("consent-malformed", "consentArtifact.signature.signature is not a detached JWS (header..signature).")
        }
        guard let kid = jws.header["kid"]?.stringValue else {
            throw ConsentFailure("consent-unknown-key", "The artifact's signature names no kid.")
        }
        let candidates = providers.values.filter { $0.keys[kid] != nil }
        guard
            let provider = candidates.sorted(by: { $0.name < $1.name }).first(where: { provider in
                jws.header["iss"]?.stringValue.map { $0 == provider.issuer } ?? true
            })
        else {
            throw ConsentFailure("consent-unknown-key", "No consent provider of this marketplace has key \(kid).")
        }
        let key = try self.key(for: jws, in: provider)
        guard key.verifies(jws.signature, over: jws.signingInput) else {
            throw ConsentFailure(
                "consent-bad-signature",
                "The artifact's signature does not verify over its consent object with key \(kid) of \(provider.name): was the consent changed after signing?")
        }
        guard let consentId = consent["consentId"]?.stringValue, let client = consent["dataConsumer"]?["id"]?.stringValue,
            let dataProvider = consent["dataProvider"]?["id"]?.stringValue, let dataId = consent["data"]?["id"]?.stringValue
        else {
            throw ConsentFailure("consent-malformed", "The consent must carry consentId, dataConsumer.id, dataProvider.id and data.id.")
        }
        guard let range = consent["permission"]?["dateRange"], let from = range["from"]?.stringValue.flatMap(Self.milliseconds),
            let to = range["to"]?.stringValue.flatMap(Self.milliseconds)
        else {
            throw ConsentFailure("consent-malformed", "The consent's permission.dateRange must have from and to as RFC 3339 times.")
        }
        let issued = consent["timestamp"]?.stringValue.flatMap(Self.milliseconds) ?? from
        try checkTimes(provider, from: from, issued: issued, to: to, now: now, what: "consent's permission.dateRange")
        return VerifiedConsent(
            form: .artifact, provider: provider.name, consentId: consentId, client: client,
            dataProvider: dataProvider, dataId: dataId, tokenId: nil, expiresMilliseconds: to,
            frequency: Self.frequency(consent["permission"]?["frequency"]))
    }

    // MARK: Parts

    /// The key a JWS names, under the provider's algorithm allow-list.
    private func key(for jws: CompactJWS, in provider: CompiledProvider) throws(ConsentFailure) -> ConsentKey {
        let algorithm = jws.header["alg"]?.stringValue ?? "(none)"
        // `none` and HMACs are never in an allow-list: an HMAC "signed" with a public key
        // proves nothing, since the public key is public.
        guard provider.algorithms.contains(algorithm) else {
            throw ConsentFailure(
                "consent-algorithm-refused",
                "Algorithm \(algorithm) is not allowed for \(provider.name) (allowed: \(provider.algorithms.sorted().joined(separator: ", "))).")
        }
        guard let kid = jws.header["kid"]?.stringValue, let key = provider.keys[kid] else {
            throw ConsentFailure("consent-unknown-key", "\(provider.name) has no key \(jws.header["kid"]?.stringValue ?? "(no kid)").")
        }
        guard key.algorithm == algorithm else {
            throw ConsentFailure("consent-algorithm-refused", "Key \(kid) of \(provider.name) is for \(key.algorithm), not \(algorithm).")
        }
        return key
    }

    private func checkTimes(
        _ provider: CompiledProvider, from: Int64, issued: Int64, to: Int64, now: Int64,
        what: String
    ) throws(ConsentFailure) {
        let skew = provider.skewMilliseconds
        if now > to + skew {
            throw ConsentFailure("consent-expired", "The \(what) ended at \(Timestamp.rfc3339(milliseconds: to)).")
        }
        if now + skew < from || now + skew < issued {
            throw ConsentFailure("consent-not-yet-valid", "The \(what) is not valid before \(Timestamp.rfc3339(milliseconds: max(from, issued))).")
        }
        if to - min(from, issued) > provider.maxLifetimeMilliseconds {
            throw ConsentFailure(
                "consent-lifetime-too-long",
                "The \(what) lasts \((to - min(from, issued)) / 1000) s, longer than the \(provider.maxLifetimeMilliseconds / 1000) s \(provider.name) may grant."
            )
        }
    }

    /// Milliseconds of a NumericDate (seconds since 1970); nil for one no clock reaches.
    static func milliseconds(seconds: Double) -> Int64? {
        guard seconds.isFinite, abs(seconds) < 1e12 else { return nil }
        return Int64((seconds * 1000).rounded())
    }

    /// A frequency, its numbers bounded so that counting periods cannot overflow: at most
    /// 100,000 units to a period, and a billion repeats.
    private static func frequency(_ value: JSONValue?) -> VerifiedConsent.Frequency? {
        guard let unit = value?["unit"]?.stringValue, let count = value?["value"]?.numberValue,
            let repeats = value?["repeats"]?.numberValue, count >= 1, repeats >= 0
        else { return nil }
        return VerifiedConsent.Frequency(
            unit: unit.lowercased(), value: Int64(min(count, 100_000)),
            repeats: Int64(min(repeats, 1e9)))
    }

    /// Milliseconds since 1970 of an RFC 3339 time: `2026-12-03T10:00:00(.123)?(Z|+05:30)`.
    static func milliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            let day = Timestamp.daysSinceEpoch(of: text.prefix(10))
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 3 { fraction = fraction * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 3)..<3 { fraction *= 10 }
        }
        var offset: Int64 = 0
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == bytes.count else { return nil }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == bytes.count, bytes[index + 3] == UInt8(ascii: ":"), let hours = number(index + 1..<index + 3),
                let minutes = number(index + 4..<index + 6)
            else { return nil }
            offset = (hours * 60 + minutes) * 60_000 * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        default:
            return nil
        }
        return ((day * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + fraction - offset
    }
}
