import Foundation

/// The git command line, run in a repository. Setu reads repositories with libgit2
/// (SetuGit); the commands that make commits as a person does — `setu approve`, and the
/// demo building its history — run git itself, so the person's identity, configuration
/// and commit signing apply as to any commit they make.
enum GitProcess {
    enum Failure: Error {
        /// git could not be started.
        case cannotRun(String)
        /// git ran and failed; what it wrote to standard error.
        case failed(String)
    }

    /// Runs `git -C directory arguments…` with `environment` over the process's own, gives it
    /// `input` on standard input, and returns what it wrote to standard output.
    static func run(
        in directory: String, _ arguments: [String], environment overrides: [String: String] = [:],
        input: String? = nil
    ) throws(Failure) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        if !overrides.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(overrides) { _, new in new }
        }
        let output = Pipe(), errors = Pipe(), standardInput = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = standardInput
        do {
            try process.run()
        } catch {
            throw .cannotRun(error.localizedDescription)
        }
        standardInput.fileHandleForWriting.write(Data((input ?? "").utf8))
        try? standardInput.fileHandleForWriting.close()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw .failed(String(decoding: stderr, as: UTF8.self)) }
        return String(decoding: stdout, as: UTF8.self)
    }
}
