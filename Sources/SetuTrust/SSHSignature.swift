import Crypto
import Foundation
import _CryptoExtras

/// An SSH public key as written in `authorized_keys` and in manifests' `sshKeys`.
public struct SSHPublicKey: Sendable, Hashable {
    /// The key's algorithm name: `ssh-ed25519`, `ecdsa-sha2-nistp256` or `ssh-rsa`.
    public let algorithm: String
    /// The key in SSH wire format (the base64 part, decoded).
    public let blob: [UInt8]

    /// A key read before: its algorithm name and wire-format blob.
    init(algorithm: String, blob: [UInt8]) {
        self.algorithm = algorithm
        self.blob = blob
    }

    /// Reads `algorithm base64 [comment]`; `nil` when the line is not an SSH key.
    public init?(authorizedKey line: String) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 2, let data = Data(base64Encoded: String(parts[1])) else { return nil }
        var reader = SSHReader(Array(data))
        guard let name = try? reader.string(), String(decoding: name, as: UTF8.self) == parts[0] else { return nil }
        self.algorithm = String(parts[0])
        self.blob = Array(data)
    }

    init(blob: [UInt8]) throws(SignatureProblem) {
        var reader = SSHReader(blob)
        guard let name = try? reader.string() else { throw SignatureProblem("the signature's public key is malformed") }
        self.algorithm = String(decoding: name, as: UTF8.self)
        self.blob = blob
    }
}

/// Why a signature gives no identity.
public struct SignatureProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, for a status report.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Verifies git's SSH signatures (`gpg.format=ssh`): the SSHSIG format of
/// OpenSSH's PROTOCOL.sshsig, as `ssh-keygen -Y sign` makes and `-Y verify` checks.
///
/// Written here because no package on the machine reads SSHSIG; the
/// cryptography itself is swift-crypto's (Ed25519, ECDSA P-256, RSA PKCS#1 v1.5
/// with SHA-256 or SHA-512).
public enum SSHSignature {
    /// The key among `keys` that made `armored` over `message` in `namespace`.
    ///
    /// - Throws: `SignatureProblem` saying why not: malformed, wrong namespace,
    ///   a key that is not registered, or a signature that does not verify.
    public static func signer(
        of armored: [UInt8], message: [UInt8], namespace: String = "git",
        keys: Set<SSHPublicKey>
    ) throws(SignatureProblem) -> SSHPublicKey {
        let blob = try dearmor(armored)
        var reader = SSHReader(blob)
        do {
            guard try reader.bytes(6) == Array("SSHSIG".utf8) else { throw SignatureProblem("not an SSH signature") }
            guard try reader.uint32() == 1 else { throw SignatureProblem("unsupported SSH signature version") }
            let publicKey = try SSHPublicKey(blob: try reader.string())
            let signedNamespace = String(decoding: try reader.string(), as: UTF8.self)
            let reserved = try reader.string()
            let hashName = String(decoding: try reader.string(), as: UTF8.self)
            let signature = try reader.string()
            guard signedNamespace == namespace else {
                throw SignatureProblem("signed for namespace '\(signedNamespace)', not '\(namespace)'")
            }
            guard keys.contains(publicKey) else {
                throw SignatureProblem("signed with an \(publicKey.algorithm) key that no member, approver or admin has registered")
            }
            let digest: [UInt8]
            switch hashName {
            case "sha512": digest = Array(SHA512.hash(data: message))
            case "sha256": digest = Array(SHA256.hash(data: message))
            default: throw SignatureProblem("unsupported hash algorithm '\(hashName)'")
            }
            var signed = Array("SSHSIG".utf8)
            SSHReader.appendString(Array(namespace.utf8), to: &signed)
            SSHReader.appendString(reserved, to: &signed)
            SSHReader.appendString(Array(hashName.utf8), to: &signed)
            SSHReader.appendString(digest, to: &signed)
            guard try verify(signature, over: signed, with: publicKey) else {
                throw SignatureProblem("the signature does not match the commit: it was altered after signing, or signed by another key")
            }
            return publicKey
        } catch let problem as SignatureProblem {
            throw problem
        } catch {
            throw SignatureProblem("the SSH signature is malformed")
        }
    }

    private static func dearmor(_ armored: [UInt8]) throws(SignatureProblem) -> [UInt8] {
        let text = String(decoding: armored, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN SSH SIGNATURE-----"),
            let end = lines.firstIndex(of: "-----END SSH SIGNATURE-----"), begin < end,
            let data = Data(base64Encoded: lines[(begin + 1)..<end].joined())
        else {
            throw SignatureProblem(text.hasPrefix("-----BEGIN PGP") ? "signed with GPG, not SSH" : "not an SSH signature")
        }
        return Array(data)
    }

    private static func verify(_ signatureBlob: [UInt8], over data: [UInt8], with key: SSHPublicKey) throws -> Bool {
        var signature = SSHReader(signatureBlob)
        let algorithm = String(decoding: try signature.string(), as: UTF8.self)
        let raw = try signature.string()
        var keyReader = SSHReader(key.blob)
        _ = try keyReader.string()
        switch (key.algorithm, algorithm) {
        case ("ssh-ed25519", "ssh-ed25519"):
            let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try keyReader.string())
            return publicKey.isValidSignature(raw, for: data)
        case ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"):
            _ = try keyReader.string()
            let publicKey = try P256.Signing.PublicKey(x963Representation: try keyReader.string())
            var parts = SSHReader(raw)
            let r = try parts.mpint(width: 32), s = try parts.mpint(width: 32)
            return publicKey.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: r + s), for: data)
        case ("ssh-rsa", "rsa-sha2-512"), ("ssh-rsa", "rsa-sha2-256"):
            let e = try keyReader.string(), n = try keyReader.string()
            let publicKey = try _RSA.Signing.PublicKey(n: n, e: e)
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: raw)
            return algorithm == "rsa-sha2-512"
                ? publicKey.isValidSignature(rsaSignature, for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
                : publicKey.isValidSignature(rsaSignature, for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        default:
            return false
        }
    }
}

/// Reads SSH wire-format fields (RFC 4251: uint32 lengths, big-endian).
struct SSHReader {
    struct Truncated: Error {}

    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else { throw Truncated() }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    mutating func uint32() throws -> UInt32 {
        try bytes(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func string() throws -> [UInt8] {
        try bytes(Int(try uint32()))
    }

    /// An unsigned mpint as exactly `width` bytes (leading zero dropped or padded).
    mutating func mpint(width: Int) throws -> [UInt8] {
        var value = try string()
        while value.count > width, value.first == 0 { value.removeFirst() }
        guard value.count <= width else { throw Truncated() }
        return [UInt8](repeating: 0, count: width - value.count) + value
    }

    static func appendString(_ value: [UInt8], to out: inout [UInt8]) {
        let count = UInt32(value.count)
        out += [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        out += value
    }
}
