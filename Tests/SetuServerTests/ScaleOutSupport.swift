import Foundation
import SetuTestSupport

/// Debian's `redis-server` on a free loopback port, without persistence: a restart starts
/// it empty, as a failover to a fresh server would. Killed with the test.
final class RedisServer: @unchecked Sendable {
    let port: Int
    private let directory = TemporaryDirectory()
    private var process: Process?

    init() throws {
        port = try freeLoopbackPort()
        try start()
    }

    deinit {
        kill()
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server (again) on its port, and waits until it answers.
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
            "--logfile", directory.child("redis.log"),
        ]
        try process.run()
        self.process = process
        for _ in 0..<250 {
            if (try? cli("PING")) == "PONG" { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw FixtureError("redis-server did not answer on port \(port)")
    }

    /// Kills the server with SIGKILL and waits for it to end.
    func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Runs `redis-cli` against the server; its output without the line end.
    @discardableResult
    func cli(_ arguments: String...) throws -> String {
        try run("/usr/bin/redis-cli", ["-p", String(port)] + arguments).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The count Redis holds for a consumer's daily quota on an API.
    func quotaUsed(database: Int = 0, consumer: String = "tester", api: String = "lab/echo") throws -> Int {
        Int(try cli("-n", String(database), "GET", "setu:{\(consumer)}:\(api):quota:\(QuotaPeriodName.today)")) ?? 0
    }
}

/// A loopback port nothing listens on now.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw FixtureError("cannot find a free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// What a load spread over replicas got back.
struct SpreadResult {
    /// The status of each answer, per gateway port; 0 for a request that got no answer.
    var statuses: [Int: [Int]]
    /// The problem type of each refusal, per gateway port.
    var problems: [Int: [String]]

    var all: [Int] { statuses.values.flatMap { $0 } }
    func count(_ status: Int) -> Int { all.filter { $0 == status }.count }
}

/// Sends `total` requests over `connections` keep-alive connections, each on a thread of
/// its own, spread round-robin over the gateways on `ports`. A connection that fails is
/// made again; a request that gets no answer counts as status 0.
func spread(_ total: Int, over ports: [Int], connections: Int, request: String) -> SpreadResult {
    final class Collected: @unchecked Sendable {
        let lock = NSLock()
        var result = SpreadResult(statuses: [:], problems: [:])
    }
    let collected = Collected()
    let group = DispatchGroup()
    for index in 0..<connections {
        let port = ports[index % ports.count]
        let share = total / connections + (index < total % connections ? 1 : 0)
        group.enter()
        Thread.detachNewThread {
            var statuses: [Int] = []
            var problems: [String] = []
            var client = try? RawClient(port: port, timeout: 2)
            for _ in 0..<share {
                if client == nil || client?.closed == true { client = try? RawClient(port: port, timeout: 2) }
                guard let connection = client, connection.send(request), let answer = connection.response(within: 5) else {
                    statuses.append(0)
                    client = nil
                    continue
                }
                statuses.append(answer.status)
                if let type = answer.problemType { problems.append(type) }
            }
            collected.lock.withLock {
                collected.result.statuses[port, default: []] += statuses
                collected.result.problems[port, default: []] += problems
            }
            group.leave()
        }
    }
    group.wait()
    return collected.result
}

/// `count` replicas of `setu serve` following one remote, each with its own state folder
/// and hit log, and the same extra arguments.
func startReplicas(_ count: Int, remote: String, arguments: [String]) async throws -> [RunningDaemon] {
    var replicas: [RunningDaemon] = []
    for _ in 0..<count {
        replicas.append(try await RunningDaemon.start(repo: remote, arguments: arguments))
    }
    return replicas
}

/// The revision a daemon serves, from its `/status`.
func servedRevision(_ daemon: RunningDaemon) async throws -> String? {
    try await call(daemon.admin + "/status", method: .GET).jsonObject["revision"] as? String
}
