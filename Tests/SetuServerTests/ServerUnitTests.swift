import Foundation
import SetuEntitlements
import SetuFormats
import SetuHits
import SetuTestSupport
import Synchronization
import Testing

@testable import SetuGateway
@testable import SetuManifest
@testable import SetuServer

struct ServeConfigurationTests {
    @Test func addressesAndSourcesAreRead() {
        #expect(ServeConfiguration.Address("127.0.0.1:8080") == .init(host: "127.0.0.1", port: 8080))
        #expect(ServeConfiguration.Address("[::1]:9090") == .init(host: "::1", port: 9090))
        #expect(ServeConfiguration.Address(":80") == .init(host: "0.0.0.0", port: 80))
        #expect(ServeConfiguration.Address("localhost") == nil)
        #expect(ServeConfiguration.Address("host:99999") == nil)
        #expect(ServeConfiguration.Source("/srv/marketplace") == .local(path: "/srv/marketplace"))
        #expect(ServeConfiguration.Source("marketplace") == .local(path: "marketplace"))
        #expect(ServeConfiguration.Source("file:///srv/m") == .remote(url: "file:///srv/m"))
        #expect(ServeConfiguration.Source("https://git.example/m.git") == .remote(url: "https://git.example/m.git"))
        #expect(ServeConfiguration.Source("git@git.example:org/m.git") == .remote(url: "git@git.example:org/m.git"))
    }
}

/// `setu serve` and `setu demo` refuse bad input with one clear line and exit code 2.
struct ServeCommandLineTests {
    @Test func badOptionsSayWhatToWrite() throws {
        let cases: [([String], String)] = [
            (["serve", "--listen", "nonsense"], "error: --listen 'nonsense' is not host:port, e.g. 127.0.0.1:8080\n"),
            (["serve", "--admin", "9090"], "error: --admin '9090' is not host:port, e.g. 127.0.0.1:9090\n"),
            (["serve", "--interval", "5 minutes"], "error: --interval '5 minutes' is not a duration such as 500ms, 10s or 5m\n"),
            (["serve", "--interval", "0s"], "error: --interval '0s' is not a duration such as 500ms, 10s or 5m\n"),
            (["serve", "--max-body-bytes", "0"], "error: --max-body-bytes must be positive\n"),
            (["serve", "--hits-max-file-bytes", "100"], "error: --hits-max-file-bytes must be at least 4096\n"),
            (["serve", "--hits-retention-days", "0"], "error: --hits-retention-days must be at least 1\n"),
            (["serve", "--max-uri-bytes", "0"], "error: --max-uri-bytes must be positive\n"),
            (["serve", "--max-headers=-1"], "error: --max-headers must be positive\n"),
            (["serve", "--max-connections", "0"], "error: --max-connections must be positive\n"),
            (["serve", "--upstream-connections", "0"], "error: --upstream-connections must be positive\n"),
            (["serve", "--header-timeout", "soon"], "error: --header-timeout 'soon' is not a duration such as 500ms, 10s or 5m\n"),
            (["serve", "--body-timeout", "0ms"], "error: --body-timeout '0ms' is not a duration such as 500ms, 10s or 5m\n"),
            (["serve", "--upstream-ca", "/nonexistent/ca.pem"], "error: --upstream-ca '/nonexistent/ca.pem' is not a readable file\n"),
        ]
        for (arguments, message) in cases {
            let result = try run(setuExecutable(), arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix(message), "\(arguments)")
        }
    }

    @Test func aCertificateAuthorityFileThatIsNotPEMStopsTheDaemon() throws {
        let marketplace = try GitFixture()
        try marketplace.copyExampleMarketplace()
        try marketplace.commitAll("The example marketplace")
        let state = TemporaryDirectory()
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: state.child("ca.pem")))
        let result = try run(
            setuExecutable(),
            [
                "serve", "--repo", marketplace.path, "--state", state.child("state"),
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream-ca", state.child("ca.pem"),
            ])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("error: cannot read the certificate authorities in \(state.child("ca.pem")): "))
        #expect(result.stderr.hasSuffix("; give a PEM file\n"))
    }

    @Test func aPortInUseStopsTheDaemonWithTheReason() async throws {
        let marketplace = try GitFixture()
        try marketplace.copyExampleMarketplace()
        try marketplace.commitAll("The example marketplace")
        let first = try await RunningDaemon.start(repo: marketplace.path)
        let state = TemporaryDirectory()
        let second = try run(
            setuExecutable(),
            [
                "serve", "--repo", marketplace.path, "--state", state.path,
                "--listen", "127.0.0.1:\(first.gatewayPort)", "--admin", "127.0.0.1:0",
            ])
        #expect(second.status == 2)
        #expect(
            second.stderr == "error: cannot listen on 127.0.0.1:\(first.gatewayPort) for the gateway: Address already in use; "
                + "choose another address with --listen\n")
        let admin = try run(
            setuExecutable(),
            [
                "serve", "--repo", marketplace.path, "--state", state.path,
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:\(first.gatewayPort)",
            ])
        #expect(admin.status == 2)
        #expect(
            admin.stderr == "error: cannot listen on 127.0.0.1:\(first.gatewayPort) for the admin listener: Address already in use; "
                + "choose another address with --admin\n")
        #expect(first.stop() == 0)
    }

    @Test func aFailedServiceEndsTheDaemonEvenIfTheOthersDoNotStop() async throws {
        struct Failure: Error {}
        let called = Mutex<[String]>([])
        let stuck = FailureWatchdog(after: .milliseconds(50)) { error in called.withLock { $0.append("stuck: \(error)") } }
        stuck.serviceFailed(Failure())
        stuck.serviceFailed(Failure())
        try await Task.sleep(for: .milliseconds(500))
        #expect(called.withLock { $0 } == ["stuck: Failure()"])

        let stopped = FailureWatchdog(after: .milliseconds(50)) { _ in called.withLock { $0.append("stopped in time") } }
        stopped.serviceFailed(Failure())
        stopped.stopped()
        try await Task.sleep(for: .milliseconds(500))
        #expect(called.withLock { $0 } == ["stuck: Failure()"])
    }

    @Test func theDemoRefusesAFolderThatIsNotADemos() throws {
        let state = TemporaryDirectory()
        try Data("mine".utf8).write(to: URL(fileURLWithPath: state.child("notes.txt")))
        let result = try run(setuExecutable(), ["demo", "--example", projectRoot.path, "--state", state.path])
        #expect(result.status == 2)
        #expect(result.stderr == "error: \(state.path) is not empty and not a Setu demo's folder; choose another with --state\n")
        #expect(FileManager.default.fileExists(atPath: state.child("notes.txt")))
    }
}

/// The pieces of the enforcement stages that need no network: limits' arithmetic, the
/// consent ledger's journal, RFC 8785 and RFC 3339 as the consent stage reads them.
