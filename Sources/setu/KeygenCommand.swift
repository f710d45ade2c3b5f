import ArgumentParser
import Crypto
import Foundation
import SetuManifest

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a new random API key; print it once, with the credential that holds its SHA-256.",
        discussion: """
        The key is printed once and never stored: keep it in your secret manager and send it
        as X-APISETU-APIKEY. Only its hash goes into git, under spec.credentials of your
        consumer.yaml.

        Example:
          setu keygen --client-id acme-bank-prod --not-after 2027-06-30
        """)

    @Option(name: .long, help: ArgumentHelp("The client id the key belongs to (sent as X-APISETU-CLIENTID).", valueName: "id"))
    var clientId: String = "<client-id>"

    @Option(name: .long, help: ArgumentHelp("The last day the key is accepted, YYYY-MM-DD.", valueName: "date"))
    var notAfter: String?

    func validate() throws {
        try validateDate(notAfter, option: "--not-after")
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
        let out = """
            API key (shown once; store it now, send it as X-APISETU-APIKEY):
              \(key)

            Credential for spec.credentials in subscriptions/<consumer>/consumer.yaml:

            """ + credential
        write(out)
    }

    /// 32 random bytes from the system's secure generator, base64url-encoded.
    static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "setu_" + encoded
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
