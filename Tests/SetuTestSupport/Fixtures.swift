import Foundation

/// The project's root folder (where Package.swift is).
public let projectRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `../shared/` beside the project, where the API Setu specs and the JSON Schema
/// test suite live; tests that use it skip themselves when it is absent.
public let sharedFolder: URL = projectRoot.deletingLastPathComponent().appendingPathComponent("shared")

/// A folder under the system's temporary folder, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The folder's path.
    public let path: String

    /// Creates an empty folder.
    public init() {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("setu-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A path inside the folder.
    public func child(_ name: String) -> String { path + "/" + name }
}

/// The result of running a program.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program and waits for it, collecting its output.
@discardableResult
public func run(
    _ executable: String, _ arguments: [String], in directory: String? = nil,
    environment: [String: String] = [:], input: Data? = nil
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try? stdin.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// A git repository built with the `git` command line in a temporary folder.
public final class GitFixture: @unchecked Sendable {
    private let directory = TemporaryDirectory()
    /// The repository's work tree.
    public var path: String { directory.path }

    /// Creates a repository with `main` as its first branch.
    public init() throws {
        try git("init", "-q", "-b", "main")
    }

    /// Runs git in the repository with a fixed identity and no signing, and returns its output.
    @discardableResult
    public func git(_ arguments: String..., author: String = "Admin <admin@setu.example>") throws -> String {
        try git(arguments, author: author)
    }

    /// Runs git in the repository; throws when it fails.
    @discardableResult
    public func git(_ arguments: [String], author: String = "Admin <admin@setu.example>") throws -> String {
        let name = String(author.prefix { $0 != "<" }).trimmingCharacters(in: .whitespaces)
        let email = String(author.drop { $0 != "<" }.dropFirst().prefix { $0 != ">" })
        let result = try run(
            "/usr/bin/git", ["-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"] + arguments, in: path,
            environment: [
                "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
                "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
            ])
        guard result.status == 0 else {
            throw FixtureError("git \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes a file (creating folders).
    public func write(_ relative: String, _ text: String) throws {
        try write(relative, bytes: Array(text.utf8))
    }

    /// Writes a file's bytes (creating folders).
    public func write(_ relative: String, bytes: [UInt8]) throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    /// Reads a file of the work tree.
    public func read(_ relative: String) throws -> String {
        try String(contentsOfFile: path + "/" + relative, encoding: .utf8)
    }

    /// Replaces the first occurrence of `old` in a file; throws when it is not there.
    public func edit(_ relative: String, replacing old: String, with new: String) throws {
        let text = try read(relative)
        guard let range = text.range(of: old) else { throw FixtureError("'\(old)' is not in \(relative)") }
        try write(relative, text.replacingCharacters(in: range, with: new))
    }

    /// Removes a file or folder of the work tree.
    public func remove(_ relative: String) throws {
        try FileManager.default.removeItem(atPath: path + "/" + relative)
    }

    /// Stages everything and commits; returns the new commit's id.
    @discardableResult
    public func commitAll(_ message: String, author: String = "Admin <admin@setu.example>") throws -> String {
        try git("add", "-A", author: author)
        try git("commit", "-q", "--allow-empty", "-m", message, author: author)
        return try git("rev-parse", "HEAD")
    }

    /// Copies the project's example marketplace into the work tree.
    public func copyExampleMarketplace() throws {
        for folder in ["catalog", "policies", "subscriptions"] {
            try FileManager.default.copyItem(atPath: projectRoot.appendingPathComponent(folder).path, toPath: path + "/" + folder)
        }
    }
}

/// A fixture that could not be set up.
public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The `setu` executable built beside the test bundle (or `SETU_BIN`).
public func setuExecutable() -> String {
    if let path = ProcessInfo.processInfo.environment["SETU_BIN"] { return path }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("setu").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return projectRoot.appendingPathComponent(".build/debug/setu").path
}

/// Runs `setu` with arguments.
@discardableResult
public func setu(_ arguments: String..., in directory: String? = nil) throws -> ProcessResult {
    try run(setuExecutable(), arguments, in: directory)
}
