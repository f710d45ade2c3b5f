import Foundation
import SetuGit
import SetuTestSupport
import SetuTrust
import Testing

/// Signatures made by `git commit -S` with `gpg.format=ssh`, checked by Setu.
struct SSHSignatureTests {
    let keys = TemporaryDirectory()

    func key(_ type: String, _ name: String) throws -> (privatePath: String, publicKey: SSHPublicKey) {
        var arguments = ["-q", "-t", type, "-N", "", "-C", name, "-f", keys.child(name)]
        if type == "rsa" { arguments += ["-b", "2048"] }
        if type == "ecdsa" { arguments += ["-b", "256"] }
        try run("/usr/bin/ssh-keygen", arguments)
        let line = try String(contentsOfFile: keys.child(name + ".pub"), encoding: .utf8)
        return (keys.child(name), try #require(SSHPublicKey(authorizedKey: line.trimmingCharacters(in: .whitespacesAndNewlines))))
    }

    func signedCommit(with privateKey: String) throws -> (GitFixture, ObjectID) {
        let fixture = try GitFixture()
        try fixture.write("policies/platform.yaml", "x\n")
        try fixture.git("add", "-A")
        try fixture.git("-c", "gpg.format=ssh", "-c", "user.signingkey=\(privateKey)", "commit", "-q", "-S", "-m", "signed")
        let repository = try Repository(path: fixture.path)
        return (fixture, try repository.resolveCommit("HEAD"))
    }

    @Test("git's SSH signatures verify", arguments: ["ed25519", "ecdsa", "rsa"])
    func verifies(_ type: String) throws {
        let (privateKey, publicKey) = try key(type, "signer-\(type)")
        let (fixture, commit) = try signedCommit(with: privateKey)
        let signature = try #require(try Repository(path: fixture.path).signature(of: commit))
        let signer = try SSHSignature.signer(of: signature.signature, message: signature.payload, keys: [publicKey])
        #expect(signer == publicKey)
    }

    @Test func unknownKeyGivesNoIdentity() throws {
        let (privateKey, _) = try key("ed25519", "stranger")
        let (_, registered) = try key("ed25519", "member")
        let (fixture, commit) = try signedCommit(with: privateKey)
        let signature = try #require(try Repository(path: fixture.path).signature(of: commit))
        #expect(throws: SignatureProblem.self) {
            try SSHSignature.signer(of: signature.signature, message: signature.payload, keys: [registered])
        }
        do {
            _ = try SSHSignature.signer(of: signature.signature, message: signature.payload, keys: [registered])
        } catch {
            #expect(error.description == "signed with an ssh-ed25519 key that no member, approver or admin has registered")
        }
    }

    @Test func alteredContentDoesNotVerify() throws {
        let (privateKey, publicKey) = try key("ed25519", "signer")
        let (fixture, commit) = try signedCommit(with: privateKey)
        let signature = try #require(try Repository(path: fixture.path).signature(of: commit))
        var payload = signature.payload
        payload[payload.count - 2] ^= 0x01
        do {
            _ = try SSHSignature.signer(of: signature.signature, message: payload, keys: [publicKey])
            Issue.record("an altered commit verified")
        } catch {
            #expect(error.description == "the signature does not match the commit: it was altered after signing, or signed by another key")
        }
    }

    @Test func wrongNamespaceDoesNotVerify() throws {
        let (privateKey, publicKey) = try key("ed25519", "signer")
        let message = Data("tree 0000\n\nmessage\n".utf8)
        try message.write(to: URL(fileURLWithPath: keys.child("message")))
        try run("/usr/bin/ssh-keygen", ["-q", "-Y", "sign", "-f", privateKey, "-n", "file", keys.child("message")])
        let armored = try Data(contentsOf: URL(fileURLWithPath: keys.child("message.sig")))
        do {
            _ = try SSHSignature.signer(of: Array(armored), message: Array(message), keys: [publicKey])
            Issue.record("a signature for another namespace verified")
        } catch {
            #expect(error.description == "signed for namespace 'file', not 'git'")
        }
        #expect(try SSHSignature.signer(of: Array(armored), message: Array(message), namespace: "file", keys: [publicKey]) == publicKey)
    }
}
