import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SetuTestSupport
import Synchronization

/// A real upstream on loopback for the gateway to call: records what it receives and
/// answers 200 with a small JSON body; paths under `/slow` answer after three seconds, and
/// a query of `big=1` gets 200,000 bytes in chunks.
final class TestUpstream: Sendable {
    struct Received: Sendable {
        var method: String
        var path: String
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [Received] = []
        func append(_ entry: Received) { lock.withLock { entries.append(entry) } }
        var all: [Received] { lock.withLock { entries } }
    }

    let port: Int
    private let received: Log
    private let group: ServiceGroup
    private let task: Task<Void, Error>

    private init(port: Int, received: Log, group: ServiceGroup, task: Task<Void, Error>) {
        self.port = port
        self.received = received
        self.group = group
        self.task = task
    }

    static func start() async throws -> TestUpstream {
        let log = Log()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                let body = try await request.body.collect(upTo: 1 << 20)
                let entry = Received(
                    method: request.method.rawValue, path: request.head.path ?? "",
                    headers: request.headers.map { ($0.name.rawName, $0.value) },
                    body: String(buffer: body))
                log.append(entry)
                if entry.path.hasPrefix("/slow") { try await Task.sleep(for: .seconds(3)) }
                if entry.path.hasSuffix("?big=1") {
                    // 200,000 bytes in chunks of unknown total length: the gateway must stream them.
                    return Response(
                        status: .ok, headers: [.contentType: "text/plain"],
                        body: ResponseBody { writer in
                            for index in 0..<200 {
                                try await writer.write(ByteBuffer(string: String(repeating: String(index % 10), count: 1000)))
                            }
                            try await writer.finish(nil)
                        })
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"upstream":"ok","path":"\#(entry.path)"}"#)))
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "test-upstream"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "test-upstream")
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [application], gracefulShutdownSignals: [],
                logger: Logger(label: "test-upstream")))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = await iterator.next() ?? 0
        return TestUpstream(port: port, received: log, group: group, task: task)
    }

    var requests: [Received] { received.all }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// The example marketplace as a git repository whose APIs call the test upstream:
/// everything in the root commit (the trust root) except Swift Loans' vehicle-registration
/// subscription, which its CTO then pushes straight to main, so it waits for approval.
///
/// pan-verification → `/tax/v3`, class-xii-marksheet → `/cbse/v3`, vehicle-registration →
/// `/vahan`, driving-licence → `/slow/sarathi` with a one-second timeout, and
/// class-x-certificates → port 1 on loopback, where nothing listens.
final class LiveMarketplace: @unchecked Sendable {
    static let keys = [
        "acme-bank-prod": "acme-live-key", "acme-bank-old": "acme-old-key",
        "swift-loans-prod": "swift-live-key", "edu-verify-prod": "edu-live-key",
    ]
    /// A second key under `acme-bank-prod`, as a key rotation leaves it.
    static let rotatedKey = "acme-rotated-key"
    static let admin = "Admin <admin@setu.example>"
    static let swiftLoans = "Swift CTO <cto@swiftloans.example>"
    static let transportApprover = "Joint Secretary <jointsecretary@parivahan.example>"
    static let acmeDev = "ACME Dev <dev@acme.example>"

    let fixture: GitFixture

    init(upstreamPort port: Int) throws {
        fixture = try GitFixture()
        try fixture.copyExampleMarketplace()
        try fixture.edit(
            "policies/platform.yaml", replacing: "  upstreams:\n    allow:\n",
            with: "  upstreams:\n    allowHTTP: true\n    allowLoopback: true\n    allow:\n      - 127.0.0.1\n")
        try fixture.edit(
            "catalog/incometax/pan-verification.yaml", replacing: "url: https://api.incometax.example/v3",
            with: "url: http://127.0.0.1:\(port)/tax/v3")
        try fixture.edit(
            "catalog/cbse/class-xii-marksheet.yaml", replacing: "url: https://api.cbse.example/v3",
            with: "url: http://127.0.0.1:\(port)/cbse/v3")
        try fixture.edit(
            "catalog/cbse/class-x-certificates.yaml", replacing: "url: https://api.cbse.example/v3",
            with: "url: http://127.0.0.1:1/cbse/v3")
        try fixture.edit(
            "catalog/transport/vehicle-registration.yaml", replacing: "url: https://api.parivahan.example/v3/vahan",
            with: "url: http://127.0.0.1:\(port)/vahan")
        try fixture.edit(
            "catalog/transport/driving-licence.yaml", replacing: "url: https://api.parivahan.example/v3/sarathi\n    timeout: 5s",
            with: "url: http://127.0.0.1:\(port)/slow/sarathi\n    timeout: 1s")
        for consumer in ["acme-bank", "swift-loans", "edu-verify"] {
            let file = "subscriptions/\(consumer)/consumer.yaml"
            var text = try fixture.read(file)
            for (clientId, key) in Self.keys {
                guard let range = text.range(of: "- clientId: \(clientId)\n") else { continue }
                let rest = text[range.upperBound...]
                guard let line = rest.range(of: "keySHA256: ") else { continue }
                let end = rest[line.upperBound...].firstIndex(of: "\n")!
                text.replaceSubrange(line.upperBound..<end, with: sha256Hex(key))
            }
            try fixture.write(file, text)
        }
        try fixture.edit(
            "subscriptions/acme-bank/consumer.yaml", replacing: "  credentials:\n",
            with: "  credentials:\n    - clientId: acme-bank-old\n      keySHA256: \(sha256Hex("acme-old-key"))\n      notAfter: 2025-01-01\n"
                + "    - clientId: acme-bank-prod\n      keySHA256: \(sha256Hex(Self.rotatedKey))\n      notAfter: 2099-12-31\n")
        // These tests are about routing, reconciles and the hit log, with bodies of their own;
        // request validation and consent have their own tests, on their own marketplace.
        for api in [
            "cbse/class-xii-marksheet", "cbse/class-x-certificates", "incometax/pan-verification",
            "transport/vehicle-registration", "transport/driving-licence",
        ] {
            let text = try fixture.read("catalog/\(api).yaml").replacingOccurrences(of: "  consent: required\n", with: "")
            try fixture.write("catalog/\(api).yaml", text + "  validation: off\n" + (api.hasPrefix("cbse/") ? "  consent: none\n" : ""))
        }
        let pending = try fixture.read("subscriptions/swift-loans/vehicle-registration.yaml")
        try fixture.remove("subscriptions/swift-loans/vehicle-registration.yaml")
        try fixture.commitAll("The example marketplace", author: Self.admin)
        try fixture.write("subscriptions/swift-loans/vehicle-registration.yaml", pending)
        try fixture.commitAll("Subscribe to vehicle registration", author: Self.swiftLoans)
    }

    var path: String { fixture.path }
}

func sha256Hex(_ text: String) -> String {
    let result = try! run("/usr/bin/env", ["sha256sum"], input: Data(text.utf8))
    return String(result.stdout.prefix(64))
}

/// `setu serve` as a child process on free loopback ports.
final class RunningDaemon: @unchecked Sendable {
    let process = Process()
    let state: TemporaryDirectory
    private(set) var gatewayPort = 0
    private(set) var adminPort = 0
    private let output = TextBuffer()

    /// Starts the daemon and waits until both listeners are up and the first reconcile is done.
    static func start(
        repo: String, state: TemporaryDirectory = TemporaryDirectory(), arguments: [String] = [],
        waitUntilReady: Bool = true
    ) async throws -> RunningDaemon {
        let daemon = try RunningDaemon(repo: repo, state: state, arguments: arguments)
        guard waitUntilReady else { return daemon }
        for _ in 0..<600 {
            if let ready = try? await call(daemon.admin + "/readyz", method: .GET), ready.status == 200 { return daemon }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("setu serve did not become ready: \(daemon.stderr)")
    }

    /// Starts the daemon and waits until both listeners are up.
    init(repo: String, state: TemporaryDirectory = TemporaryDirectory(), arguments: [String] = []) throws {
        self.state = state
        process.executableURL = URL(fileURLWithPath: setuExecutable())
        process.arguments =
            [
                "serve", "--repo", repo, "--state", state.child("state"), "--listen", "127.0.0.1:0",
                "--admin", "127.0.0.1:0", "--interval", "1h",
            ] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        _ = FileManager.default.createFile(atPath: state.child("stderr.log"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: state.child("stderr.log"))
        try process.run()
        let reader = stdout.fileHandleForReading
        let output = output
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.append(String(decoding: data, as: UTF8.self))
            }
        }
        for _ in 0..<600 {
            let text = output.text
            if let gateway = Self.port(of: "gateway", in: text), let admin = Self.port(of: "admin", in: text) {
                gatewayPort = gateway
                adminPort = admin
                return
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw FixtureError("setu serve did not start: \(stderr)")
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    var stderr: String { (try? String(contentsOfFile: state.child("stderr.log"), encoding: .utf8)) ?? "" }
    var hitDirectory: String { state.child("state/hits") }
    var gateway: String { "http://127.0.0.1:\(gatewayPort)" }
    var admin: String { "http://127.0.0.1:\(adminPort)" }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit status.
    @discardableResult
    func stop() -> Int32 {
        signal(SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    private static func port(of name: String, in text: String) -> Int? {
        guard let range = text.range(of: "\(name) listening on http://127.0.0.1:") ?? text.range(of: "\(name) listening on https://127.0.0.1:")
        else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }
}

/// A response read whole.
struct Answer {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    /// The problem document's fields, when the body is one.
    var problem: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    var problemType: String? { problem["type"] as? String }
    var detail: String { problem["detail"] as? String ?? "" }
}

/// Makes a request and reads the whole answer.
func call(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: String? = nil) async throws -> Answer {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
}

/// The credential headers of a client id from `LiveMarketplace.keys`.
func credentials(_ clientId: String, key: String? = nil) -> [(String, String)] {
    [("X-APISETU-CLIENTID", clientId), ("X-APISETU-APIKEY", key ?? LiveMarketplace.keys[clientId]!)]
}

/// Text appended by one thread and read by another.
final class TextBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    func append(_ text: String) { lock.withLock { value += text } }
    var text: String { lock.withLock { value } }
}
