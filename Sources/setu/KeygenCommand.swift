import ArgumentParser
import Crypto
import Foundation
import SetuGateway
import SetuManifest

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a new random API key; print it once, with the credential that holds its SHA-256.",
        discussion: """
            The key is printed once and never stored: keep it in your secret manager and send it
            as X-APISETU-APIKEY. Only its hash goes into git, under spec.credentials of your
            consumer.yaml.

            To rotate a key without changing the client id callers send, run it with --rotate:
            add the printed credential beside the old one under the same client id, move callers
            to the new key, then set notAfter on the old credential or remove it. Both keys are
            accepted meanwhile.

            Examples:
              setu keygen --client-id acme-bank-prod --not-after 2027-06-30
              setu keygen --rotate --client-id acme-bank-prod --not-after 2028-06-30
            """)

    @Option(name: .long, help: ArgumentHelp("The client id the key belongs to (sent as X-APISETU-CLIENTID).", valueName: "id"))
    var clientId: String = "<client-id>"

    @Option(name: .long, help: ArgumentHelp("The last day the key is accepted, YYYY-MM-DD.", valueName: "date"))
    var notAfter: String?

    @Flag(name: .long, help: "Make a replacement key for an existing client id.")
    var rotate = false

    func validate() throws {
        try validateDate(notAfter, option: "--not-after")
        if rotate && clientId == "<client-id>" {
            throw ValidationError("--rotate needs --client-id: the client id whose key is replaced")
        }
    }

    func run() throws {
        let key = Self.newKey()
        var credential = """
                - clientId: \(clientId)
                  keySHA256: \(Self.sha256Hex(key))

            """
        if let notAfter {
            credential += "      notAfter: \(notAfter)\n"
        }
        let placement =
            rotate
            ? """
            New credential for client id \(clientId): add it to spec.credentials in
            subscriptions/<consumer>/consumer.yaml beside the current one, keeping the same
            clientId. Both keys work once it is merged; move callers to the new key, then give
            the old credential a notAfter (or remove it) to retire the old key:
            """
            : "Credential for spec.credentials in subscriptions/<consumer>/consumer.yaml:"
        let out = """
            API key (shown once; store it now, send it as X-APISETU-APIKEY):
              \(key)

            \(placement)

            """ + credential
        write(out)
    }

    /// 32 random bytes from the system's secure generator, base64url-encoded.
    static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "setu_" + Base64URL.encode(bytes)
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
