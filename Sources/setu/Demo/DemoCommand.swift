import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SetuServer

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Setu on a demo marketplace built from the example, with sample upstreams.",
        discussion: """
            Builds a marketplace repository in <state>/marketplace from the
            example's catalog/, subscriptions/ and policies/, with the history a
            real one has: an admin admits the publishers and consumers, publishers
            list their APIs, consumers subscribe on branches that an approver of
            the publisher merges, and one subscription waits for approval. Starts
            sample upstreams on loopback that answer like API Setu's issuers, runs
            the daemon on that repository, and prints curl commands to try.
            Ctrl-C stops it.

            The state folder is rebuilt on each run; a folder that is not a demo's
            is refused.

            Examples:
              setu demo
              setu demo --listen 127.0.0.1:0 --admin 127.0.0.1:0 --state /tmp/demo
            """)

    @Option(name: .long, help: ArgumentHelp("The example marketplace to copy: a folder with catalog/, subscriptions/ and policies/.", valueName: "dir"))
    var example: String = "."

    @Option(name: .long, help: ArgumentHelp("The demo's folder: its repository, replay state and hits.", valueName: "dir"))
    var state: String = ".setu-demo"

    @OptionGroup var daemon: DaemonOptions

    static let marker = ".setu-demo"

    func run() async throws {
        bootstrapLogging()
        try prepareState()
        let repositoryPath = state + "/marketplace"
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        // The sample upstreams run in a group of their own, started first because the
        // repository names their port, and stopped gracefully after the daemon.
        let consent = DemoConsentProvider(issuer: "https://meripehchaan.example", audience: "setu-example")
        let upstreams = ServiceGroup(
            configuration: .init(
                services: [DemoUpstream.application(port: 0, consent: consent) { portContinuation.yield($0) }],
                gracefulShutdownSignals: [], logger: Logger(label: "setu-demo-upstreams")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            var iterator = ports.makeAsyncIterator()
            guard let upstreamPort = await iterator.next() else { throw CLIFailure("the sample upstreams did not start") }
            let upstreamBase = "http://127.0.0.1:\(upstreamPort)"
            var repository = DemoRepository(example: example, path: repositoryPath, upstreamBase: upstreamBase)
            let keys = try repository.build()
            let configuration = daemon.configuration(
                source: .local(path: repositoryPath), branch: "main",
                state: state, trustRoot: nil)
            try await runDaemon(configuration) { addresses in
                write(
                    Self.instructions(
                        gateway: addresses["gateway"]!, admin: addresses["admin"]!,
                        upstreams: upstreamBase, repository: repositoryPath, keys: keys) + "\n")
            }
            await upstreams.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// Empties the state folder when it is a previous demo's; refuses any other non-empty
    /// folder, and a demo's folder that a running demo holds. The marker file is kept and
    /// locked for as long as this demo runs, so a second demo on the folder touches nothing.
    private func prepareState() throws {
        let manager = FileManager.default
        if let contents = try? manager.contentsOfDirectory(atPath: state), !contents.isEmpty {
            guard contents.contains(Self.marker) else {
                throw CLIFailure("\(state) is not empty and not a Setu demo's folder; choose another with --state")
            }
        }
        try manager.createDirectory(atPath: state, withIntermediateDirectories: true)
        let marker = state + "/" + Self.marker
        let descriptor = open(marker, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CLIFailure("cannot open \(marker): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw CLIFailure("another setu demo is running on \(state); stop it first, or choose another folder with --state")
        }
        // Held, never closed: the lock lasts until the process ends.
        let text = "setu demo state\n"
        _ = ftruncate(descriptor, 0)
        _ = text.withCString { write(descriptor, $0, strlen($0)) }
        for name in try manager.contentsOfDirectory(atPath: state) where name != Self.marker {
            try manager.removeItem(atPath: state + "/" + name)
        }
    }

    static func instructions(
        gateway: ServeConfiguration.Address, admin: ServeConfiguration.Address, upstreams: String,
        repository: String, keys: [String: String]
    ) -> String {
        let base = "http://\(gateway)"
        let acme = keys["acme-bank-prod"] ?? ""
        let swift = keys["swift-loans-prod"] ?? ""
        let pan =
            #"{"txnId":"f7f1469c-29b0-4325-9dfc-c567200a70f7","format":"xml","certificateParameters":{"panno":"ABCDE1234F","PANFullName":"RAMESHWAR KUMAR SINGH","DOB":"31-12-1980"}}"#
        let vehicle = #"{"txnId":"0b6f3b8e-5c1a-4b7e-9a53-0d1c2e3f4a5b","format":"xml","certificateParameters":{"regno":"DL01AB1234","chasisno":"12345"}}"#
        let marksheet = #"{"txnId":"3c1d9a2e-7b4f-4e8a-9c6d-5f2e1a0b9c8d","format":"xml","certificateParameters":{"rollno":"1100040","year":"2016"}}"#
        let licence = #"{"txnId":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","format":"xml","certificateParameters":{"dlno":"DL0420110149646","DOB":"01-01-1990"}}"#
        let invalid =
            #"{"txnId":"f7f1469c-29b0-4325-9dfc-c567200a70f7","format":"doc","certificateParameters":{"panno":"ABCDE1234F","PANFullName":"RAMESHWAR KUMAR SINGH","DOB":"31-12-1980"}}"#

        return """

            Setu demo is running. Ctrl-C stops it.
              marketplace repository: \(repository)   (git -C \(repository) log --graph --oneline)
              gateway:                \(base)
              admin:                  http://\(admin)
              sample upstreams:       \(upstreams)
              hit log:                \(repository.dropLast("/marketplace".count))/hits/

            A call that succeeds: ACME Bank verifies a PAN (subscription approved by the Income Tax approver):
              curl -i -X POST \(base)/pan/v3/pancr/certificate -H 'X-APISETU-CLIENTID: acme-bank-prod' -H 'X-APISETU-APIKEY: \(acme)' -H 'Content-Type: application/json' -d '\(pan)'

            A call refused as pending approval: Swift Loans pushed its vehicle-registration subscription straight to main:
              curl -i -X POST \(base)/transport/v3/vehicle/rvcer/certificate -H 'X-APISETU-CLIENTID: swift-loans-prod' -H 'X-APISETU-APIKEY: \(swift)' -H 'Content-Type: application/json' -d '\(vehicle)'

            A call without credentials:
              curl -i -X POST \(base)/pan/v3/pancr/certificate -H 'Content-Type: application/json' -d '\(pan)'

            An authorized partner with the user's consent: EduVerify gets a consent token from the sample
            consent provider (standing in for MeriPehchaan) and fetches a Class XII marksheet with it:
              TOKEN=$(curl -s '\(upstreams)\(DemoConsentProvider.prefix)token?client_id=EV7Q2K9M&data_provider=cbse&data_id=hscer')
              curl -i -X POST \(base)/cbse/v3/class-xii/hscer/certificate -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '\(marksheet)'
            Sent again, the same transaction is refused as a replay (401 consent-replayed).

            The same document API without consent, refused: ACME Bank is subscribed, but sends no consent:
              curl -i -X POST \(base)/cbse/v3/class-xii/hscer/certificate -H 'X-APISETU-CLIENTID: acme-bank-prod' -H 'X-APISETU-APIKEY: \(acme)' -H 'Content-Type: application/json' -d '\(marksheet)'

            A 429 once the burst is spent: Swift Loans' standard plan allows 10 calls a second, 20 at once.
            Every answer states the plan in RateLimit-Policy and what is left in RateLimit:
              for i in $(seq 40); do curl -s -o /dev/null -X POST \(base)/transport/v3/driving-licence/drvlc/certificate -H 'X-APISETU-CLIENTID: swift-loans-prod' -H 'X-APISETU-APIKEY: \(swift)' -H 'Content-Type: application/json' -d '\(licence)'; done
              curl -i -X POST \(base)/transport/v3/driving-licence/drvlc/certificate -H 'X-APISETU-CLIENTID: swift-loans-prod' -H 'X-APISETU-APIKEY: \(swift)' -H 'Content-Type: application/json' -d '\(licence)'

            A body the API's OpenAPI document refuses, with the JSON pointer of what is wrong (format "doc"):
              curl -i -X POST \(base)/pan/v3/pancr/certificate -H 'X-APISETU-CLIENTID: acme-bank-prod' -H 'X-APISETU-APIKEY: \(acme)' -H 'Content-Type: application/json' -d '\(invalid)'

            Approve it as a reviewer would: Swift Loans resubmits on a branch, an approver of
            transport merges it with a merge commit, and a reconcile serves it, with no restart:
              git -C \(repository) switch -q -c swift-loans/resubmit
              printf '# resubmitted for review\\n' >> \(repository)/\(DemoRepository.pendingSubscription)
              git -C \(repository) -c user.name='Swift Loans CTO' -c user.email=cto@swiftloans.example commit -qam 'Resubmit for approval'
              git -C \(repository) switch -q main
              git -C \(repository) -c user.name='Joint Secretary' -c user.email=jointsecretary@parivahan.example merge -q --no-ff -m 'Approve Swift Loans' swift-loans/resubmit
              curl -X POST http://\(admin)/reconcile
            Then the refused call above succeeds.

            The admin listener:
              curl http://\(admin)/healthz
              curl http://\(admin)/readyz
              curl http://\(admin)/status
              curl http://\(admin)/metrics
              curl -X POST http://\(admin)/reconcile

            """
    }
}
