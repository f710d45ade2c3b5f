import ArgumentParser
import Foundation
import SetuGit
import SetuManifest

/// The `setu` command line: wiring between the modules and the user.
@main
struct Setu: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setu",
        abstract: "A GitOps API marketplace: manifests in git, access only after the publisher approves.",
        discussion: """
        Exit codes: 0 success, 1 the marketplace is invalid, 2 a usage or I/O error.

        Start with `setu validate --repo PATH` in a marketplace repository, or `setu init DIR` for a new one.
        """,
        subcommands: [
            ValidateCommand.self, CatalogCommand.self, SchemaCommand.self, KeygenCommand.self,
            InitCommand.self, ImportOpenAPICommand.self,
        ])

    /// Runs the command, mapping failures to the documented exit codes: a usage
    /// mistake or an I/O failure exits 2 with one clear line, never a stack trace.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch let error as CLIFailure {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch let error as GitError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch let error as ManifestError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty {
                FileHandle.standardError.write(Data((message.hasPrefix("Error:") || message.hasPrefix("error:") ? message : "error: \(message)").utf8 + [10]))
            }
            Foundation.exit(code == .validationFailure || code == .failure ? 2 : code.rawValue)
        }
    }
}

/// A failure the user can act on: printed as `error: message`, exit code 2.
struct CLIFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Writes text to standard output without a trailing newline being added.
func write(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
