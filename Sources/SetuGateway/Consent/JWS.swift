@preconcurrency import Crypto
import Foundation
import SetuFormats
import SetuHits
import SetuManifest
import _CryptoExtras

// Consents are verified with swift-crypto directly, on the request path, rather than with
// jwt-kit: jwt-kit's key collection is an actor and its signers are internal, so every
// verification would be an `await` (a task and a hop off the event loop) for what is one
// synchronous signature check. The parsing below is the part of RFC 7515 a gateway needs:
// compact serialisation, detached payloads, and three algorithms.

/// A public key a consent provider signs with, ready to verify.
struct ConsentKey: Sendable {
    enum Verifier: Sendable {
        case ed25519(Curve25519.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey)
    }

    let kid: String
    /// `EdDSA`, `ES256` or `RS256`: the only algorithm this key verifies.
    let algorithm: String
    let verifier: Verifier

    /// A key from a PEM `SubjectPublicKeyInfo`, for the algorithm the manifest names.
    init(kid: String, algorithm: String, pem: String) throws {
        self.kid = kid
        self.algorithm = algorithm
        switch algorithm {
        case "EdDSA":
            // SPKI for Ed25519 (RFC 8410): a fixed 12-byte prefix, then the 32-byte key.
            let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            guard let der = Data(base64Encoded: body), der.count == 44,
                der.prefix(12) == Data([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
            else {
                throw ConsentKeyError("is not an Ed25519 public key in PEM form")
            }
            verifier = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32)))
        case "ES256":
            verifier = .p256(try P256.Signing.PublicKey(pemRepresentation: pem))
        case "RS256":
            verifier = .rsa(try _RSA.Signing.PublicKey(pemRepresentation: pem))
        default:
            throw ConsentKeyError("uses algorithm \(algorithm); Setu verifies EdDSA, ES256 and RS256")
        }
    }

    /// A key from a JWK (RFC 7517) in a provider's JWKS: OKP/Ed25519, EC/P-256 or RSA.
    init(jwk: JSONValue) throws {
        guard let kid = jwk["kid"]?.stringValue else { throw ConsentKeyError("has no kid") }
        self.kid = kid
        func bytes(_ name: String) throws -> Data {
            guard let text = jwk[name]?.stringValue, let data = Base64URL.decode(Substring(text)) else {
                throw ConsentKeyError("\(kid) has no valid '\(name)'")
            }
            return data
        }
        switch (jwk["kty"]?.stringValue, jwk["crv"]?.stringValue) {
        case ("OKP", "Ed25519"):
            algorithm = "EdDSA"
            verifier = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: try bytes("x")))
        case ("EC", "P-256"):
            algorithm = "ES256"
            verifier = .p256(try P256.Signing.PublicKey(rawRepresentation: try bytes("x") + bytes("y")))
        case ("RSA", _):
            algorithm = "RS256"
            verifier = .rsa(try _RSA.Signing.PublicKey(n: try bytes("n"), e: try bytes("e")))
        default:
            throw ConsentKeyError("\(kid) is a key type Setu does not verify (OKP/Ed25519, EC/P-256 and RSA are)")
        }
        if let stated = jwk["alg"]?.stringValue, stated != algorithm {
            throw ConsentKeyError("\(kid) says alg \(stated) but is a key for \(algorithm)")
        }
    }

    /// Whether `signature` signs `input` under this key.
    func verifies(_ signature: Data, over input: Data) -> Bool {
        switch verifier {
        case .ed25519(let key):
            return key.isValidSignature(signature, for: input)
        case .p256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: input)
        case .rsa(let key):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: input,
                padding: .insecurePKCS1v1_5)
        }
    }
}

struct ConsentKeyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Base64url without padding (RFC 7515 §2).
public enum Base64URL {
    public static func decode(_ text: Substring) -> Data? {
        guard text.utf8.allSatisfy({ ASCIIBytes.isLetterOrDigit($0, or: "-_") }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }

    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// A JWS in compact serialisation, taken apart but not yet verified.
struct CompactJWS {
    let header: JSONValue
    /// The payload's bytes; for a detached JWS, what the caller supplied.
    let payload: Data
    let signature: Data
    /// `BASE64URL(header) "." BASE64URL(payload)`: what the signature signs.
    let signingInput: Data

    /// - Parameter detachedPayload: the payload of a JWS whose middle part is empty
    ///   (RFC 7515 Appendix F).
    init?(_ text: some StringProtocol, detachedPayload: Data? = nil) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(Substring(parts[0])),
            let header = try? JSONValue(json: headerBytes), case .object = header,
            let signature = Base64URL.decode(Substring(parts[2]))
        else { return nil }
        let payloadPart: String
        if let detachedPayload {
            guard parts[1].isEmpty else { return nil }
            payload = detachedPayload
            payloadPart = Base64URL.encode(detachedPayload)
        } else {
            guard let decoded = Base64URL.decode(Substring(parts[1])) else { return nil }
            payload = decoded
            payloadPart = String(parts[1])
        }
        self.header = header
        self.signature = signature
        signingInput = Data((String(parts[0]) + "." + payloadPart).utf8)
    }
}

/// RFC 8785's JSON Canonicalization Scheme: what a detached consent signature signs.
enum CanonicalJSON {
    static func encode(_ value: JSONValue) -> Data {
        var out: [UInt8] = []
        append(value, to: &out)
        return Data(out)
    }

    private static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out += "null".utf8
        case .bool(let flag): out += (flag ? "true" : "false").utf8
        case .number(let value): out += number(value).utf8
        case .string(let text): JSONString.append(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Keys sort by their UTF-16 code units (RFC 8785 §3.2.3).
            for (index, key) in members.keys.sorted(by: { $0.utf16.lexicographicallyPrecedes($1.utf16) }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONString.append(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(members[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// ECMAScript's Number-to-String, which RFC 8785 §3.2.2.3 prescribes.
    private static func number(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value.rounded() == value && abs(value) < 1e21 { return String(format: "%.0f", value) }
        var text = "\(value)"
        if let e = text.firstIndex(of: "e") {
            let mantissa = text[..<e]
            var exponent = text[text.index(after: e)...]
            let negative = exponent.first == "-"
            if exponent.first == "-" || exponent.first == "+" { exponent = exponent.dropFirst() }
            while exponent.count > 1 && exponent.first == "0" { exponent = exponent.dropFirst() }
            let trimmed = mantissa.hasSuffix(".0") ? mantissa.dropLast(2) : mantissa
            text = trimmed + "e" + (negative ? "-" : "+") + exponent
        }
        return text
    }
}
