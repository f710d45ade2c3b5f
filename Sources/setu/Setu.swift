import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SetuConcurrency
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
        version: "setu \(Setu.version) (manifests apiVersion setu/v1)",
        subcommands: [
            ValidateCommand.self, StatusCommand.self, PlanCommand.self, ApproveCommand.self, CatalogCommand.self, UsageCommand.self, RollupCommand.self,
            SchemaCommand.self,
            KeygenCommand.self,
            InitCommand.self, ImportOpenAPICommand.self, ServeCommand.self, DemoCommand.self,
        ])

    /// The release: its minor number is the last issue the release completes.
    static let version = "0.13.0"

    /// Runs the command, mapping failures to the documented exit codes: a usage
    /// mistake or an I/O failure exits 2 with one clear line, never a stack trace.
    static func main() {
        do {
            var command = try parseAsRoot()
            if let command = command as? AsyncParsableCommand {
                // The admin listener's requests and the daemon's services pass between
                // NIO's event loops and Swift concurrency; running concurrency on the event
                // loops removes those thread hops. It must be installed before any task runs.
                NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
                try runBlocking(command)
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch let error as CLIFailure {
            fail(error.message)
        } catch let error as GitError {
            fail(error.message)
        } catch let error as ManifestError {
            fail(error.message)
        } catch {
            // Argument parsing: help and version exit 0 on standard output; a usage mistake exits 2.
            let message = fullMessage(for: error)
            if exitCode(for: error) == .success {
                print(message)
                Foundation.exit(0)
            }
            fail(message.hasPrefix("Error: ") ? String(message.dropFirst("Error: ".count)) : message)
        }
    }

    /// Runs an async command to its end from the synchronous main thread, which waits on
    /// the command's future as NIO lets a thread outside its event loops do.
    private static func runBlocking(_ command: AsyncParsableCommand) throws {
        let command = UnsafeSendable(command)
        let done = NIOSingletons.posixEventLoopGroup.any().makePromise(of: Void.self)
        done.completeWithTask {
            var command = command.value
            try await command.run()
        }
        try done.futureResult.wait()
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(2)
    }
}

/// A failure the user can act on: printed as `error: message`, exit code 2.
struct CLIFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Checks a date option: written YYYY-MM-DD, and a day that exists.
func validateDate(_ value: String?, option: String) throws {
    guard let value else { return }
    if let missing = ManifestDate.missingDay(value) {
        throw ValidationError("\(option) \(value) is not a day: \(missing.problem)")
    }
    if !ManifestDate.isValid(value) {
        throw ValidationError("\(option) must be a date written YYYY-MM-DD, e.g. 2027-06-30")
    }
}

/// Writes text to standard output without a trailing newline being added.
func write(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// A value as indented JSON with sorted keys and a final newline: every `--format json`.
func prettyJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}
