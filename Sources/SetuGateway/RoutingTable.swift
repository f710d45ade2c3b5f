import Crypto
import SetuEntitlements
import SetuFormats
import SetuHits
import SetuManifest

/// A gateway snapshot compiled for the request path: routes ordered for longest-prefix
/// matching, operation templates split into segments, key digests as bytes and dates as
/// day numbers. Immutable; a reconcile builds a new one and swaps it in whole.
public final class RoutingTable: Sendable {
    /// The snapshot it was compiled from.
    public let snapshot: GatewaySnapshot
    /// Routes, longest base path first.
    let routes: [CompiledRoute]
    /// Credentials by client id; several while a key is rotated.
    let credentials: [String: [CompiledCredential]]
    /// Active entitlements by consumer and API, with their end day.
    let active: [String: [String: CompiledEntitlement]]

    /// Compiles a snapshot.
    /// - Parameter counters: where the plans' counters are kept across tables; nil for a
    ///   table that limits nothing.
    /// Verifies consents with the providers' keys: the manifests', and those their JWKS served.
    let consent: ConsentVerifier
    /// Authorized partners' consumers, by consent provider and the client id it issued them.
    let partnerConsumers: [String: String]

    /// - Parameter fetchedKeys: keys each consent provider's JWKS served, by provider.
    /// - Parameter previous: the table this one replaces: what was compiled from the same
    ///   parts of the snapshot is taken from it (`GatewaySnapshot.catalogID`,
    ///   `entitlementsID`), so a reconcile that changed a few consumers' entitlements
    ///   compiles only theirs.
    init(_ snapshot: GatewaySnapshot, counters: PlanCounters?, fetchedKeys: [String: [ConsentKey]] = [:], previous: RoutingTable? = nil) {
        self.snapshot = snapshot
        consent = ConsentVerifier(snapshot.consentProviders, fetched: fetchedKeys)
        let same = previous.flatMap { $0.snapshot.catalogID == snapshot.catalogID ? $0 : nil }
        if let same {
            partnerConsumers = same.partnerConsumers
            routes = same.routes
            credentials = same.credentials
        } else {
            var partners: [String: String] = [:]
            for (consumer, partner) in snapshot.partners { partners[partner.provider + "\n" + partner.clientId] = consumer }
            partnerConsumers = partners
            routes = snapshot.routes.values.map(CompiledRoute.init).sorted { $0.basePath.utf8.count > $1.basePath.utf8.count }
            credentials = snapshot.credentials.mapValues { $0.map(CompiledCredential.init) }
        }
        let plans = snapshot.plans.mapValues(CompiledPlan.init)
        func compile(_ byAPI: [String: Entitlement]) -> [String: CompiledEntitlement] {
            byAPI.mapValues { entitlement in
                let plan = plans[entitlement.plan]
                return CompiledEntitlement(
                    entitlement, plan: plan,
                    cell: plan == nil ? nil : counters?.cell(consumer: entitlement.consumer, api: entitlement.api))
            }
        }
        if let same, same.snapshot.entitlementsID == snapshot.entitlementsID {
            active = same.active
        } else if let same, let change = snapshot.changedFrom, change.entitlementsID == same.snapshot.entitlementsID {
            var active = same.active
            for consumer in change.consumers { active[consumer] = snapshot.entitlements[consumer].map(compile) }
            self.active = active
        } else {
            active = snapshot.entitlements.mapValues(compile)
        }
    }

    /// Compiles a snapshot whose plans limit nothing.
    public convenience init(_ snapshot: GatewaySnapshot) {
        self.init(snapshot, counters: nil)
    }

    /// The quota in force for a consumer on an API.
    func quota(consumer: String, api: String) -> (Int64, Plan.QuotaPeriod)? {
        guard let plan = active[consumer]?[api]?.plan, let quota = plan.quota, let period = plan.quotaPeriod else { return nil }
        return (quota, period)
    }

    /// The route whose base path is the longest prefix of `path` at a segment boundary,
    /// and the rest of the path after it (empty when the path is the base path).
    func route(for path: Substring) -> (CompiledRoute, Substring)? {
        for route in routes {
            guard path.utf8.starts(with: route.basePath.utf8) else { continue }
            let rest = path.dropFirst(route.basePath.count)
            if rest.isEmpty || rest.first == "/" || route.basePath == "/" { return (route, rest) }
        }
        return nil
    }

    /// The listing API a path names as `/<publisher>/<name>…`, if any.
    func listing(for path: Substring) -> GatewaySnapshot.Listing? {
        let segments = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true)
        guard segments.count >= 2 else { return nil }
        return snapshot.listings["\(segments[0])/\(segments[1])"]
    }
}

/// A route with its operations ready to match and its upstream's address taken apart.
struct CompiledRoute: Sendable {
    let route: GatewaySnapshot.Route
    let basePath: String
    let operations: [CompiledOperation]
    /// Where requests go; nil when the URL cannot be read, which the proxy answers with 502.
    let upstream: UpstreamTarget?
    /// Schemas of the OpenAPI document the validator could not take, and so does not apply.
    let validationProblems: [String]

    init(_ route: GatewaySnapshot.Route) {
        self.route = route
        upstream = UpstreamTarget(url: route.upstreamURL)
        var basePath = route.basePath
        while basePath.count > 1 && basePath.hasSuffix("/") { basePath.removeLast() }
        self.basePath = basePath
        let (schemas, problems) = RequestCheckCompiler.schemas(of: route)
        validationProblems = problems
        // More literal segments first, so `/users/me` wins over `/users/{id}`.
        operations = route.operations.map { CompiledOperation($0, validation: route.validation, schemas: schemas) }
            .sorted { $0.literals > $1.literals }
    }

    /// What the operations say of a method and a path below the base path.
    enum Match {
        /// The API describes no operations: every path is passed on.
        case undescribed
        case operation(CompiledOperation)
        /// The path is an operation's, but not for this method.
        case methodNotAllowed(allowed: [String])
        case noOperation
    }

    func match(method: String, path: Substring) -> Match {
        guard !operations.isEmpty else { return .undescribed }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var allowed: [String] = []
        for operation in operations where operation.matches(segments) {
            if operation.method == method { return .operation(operation) }
            if !allowed.contains(operation.method) { allowed.append(operation.method) }
        }
        return allowed.isEmpty ? .noOperation : .methodNotAllowed(allowed: allowed.sorted())
    }
}

/// An OpenAPI operation's method and path template.
struct CompiledOperation: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        /// A template parameter, by name.
        case parameter(String)
    }

    let method: String
    let template: String
    let operationId: String?
    let segments: [Segment]
    let literals: Int
    /// What requests must be to pass the OpenAPI description, unless validation is off.
    let check: RequestCheck?
    /// Whether the body schema carries API Setu's `consentArtifact`.
    let carriesConsentArtifact: Bool

    init(_ operation: APIOperation, validation: API.Validation = .off, schemas: [String: JSONSchema] = [:]) {
        method = operation.method.uppercased()
        template = operation.path
        operationId = operation.operationId
        segments = operation.path.split(separator: "/", omittingEmptySubsequences: true).map { piece in
            piece.hasPrefix("{") && piece.hasSuffix("}") ? .parameter(String(piece.dropFirst().dropLast())) : .literal(String(piece))
        }
        literals = segments.filter { if case .literal = $0 { true } else { false } }.count
        check = validation == .off ? nil : RequestCheck(mode: validation, request: operation.request, template: segments, schemas: schemas)
        carriesConsentArtifact = operation.request.carriesConsentArtifact
    }

    func matches(_ path: [Substring]) -> Bool {
        guard path.count == segments.count else { return false }
        for (segment, piece) in zip(segments, path) {
            if case .literal(let literal) = segment, literal != piece { return false }
        }
        return true
    }

    /// The name a subscription's `operations` list uses: the operationId, else `METHOD /path`.
    var name: String { operationId ?? "\(method) \(template)" }
}

/// A credential with its key digest as bytes and its dates as day numbers.
struct CompiledCredential: Sendable {
    let credential: GatewaySnapshot.Credential
    let digest: [UInt8]?
    let firstDay: Int64?
    let lastDay: Int64?

    init(_ credential: GatewaySnapshot.Credential) {
        self.credential = credential
        digest = CompiledCredential.bytes(hex: credential.keySHA256)
        firstDay = credential.notBefore.flatMap { Timestamp.daysSinceEpoch(of: $0.prefix(10)) }
        lastDay = credential.notAfter.flatMap { Timestamp.daysSinceEpoch(of: $0.prefix(10)) }
    }

    /// The SHA-256 of a presented key, to compare with each credential's.
    static func digest(of key: String) -> [UInt8] {
        var key = key
        var hasher = SHA256()
        key.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return Array(hasher.finalize())
    }

    /// Whether `key` hashes to the registered digest, compared in constant time.
    func accepts(key: String) -> Bool {
        accepts(digest: Self.digest(of: key))
    }

    /// Whether a presented key's digest is the registered one, compared in constant time.
    func accepts(digest presented: [UInt8]) -> Bool {
        guard let digest else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(presented, digest) { difference |= left ^ right }
        return difference == 0 && presented.count == digest.count
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// An active entitlement with its last day as a day number, its plan, and the counters
/// its calls are limited by.
struct CompiledEntitlement: Sendable {
    let entitlement: Entitlement
    let lastDay: Int64?
    let operations: Set<String>?
    let plan: CompiledPlan?
    let cell: LimitCell?

    init(_ entitlement: Entitlement, plan: CompiledPlan?, cell: LimitCell?) {
        self.entitlement = entitlement
        self.plan = plan
        self.cell = cell
        lastDay = entitlement.notAfter.flatMap { Timestamp.daysSinceEpoch(of: $0.prefix(10)) }
        operations = entitlement.operations.map(Set.init)
    }
}

/// An upstream URL taken apart once, when the table is compiled: where to connect, what
/// to send as `Host`, and the path the API's paths go under.
struct UpstreamTarget: Sendable, Hashable {
    /// Which connections may carry a request: the same scheme, host and port.
    struct Key: Sendable, Hashable, CustomStringConvertible {
        var tls: Bool
        /// A name, or an IP address without brackets.
        var host: String
        var port: Int

        var description: String { (tls ? "https://" : "http://") + (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }
    }

    let key: Key
    /// `host` or `host:port` when the port is not the scheme's own.
    let hostHeader: String
    /// The URL's path without a trailing `/`; empty for the root.
    let pathPrefix: String

    /// Reads `http://host[:port][/path]` or `https://…`; nil for anything else.
    init?(url: String) {
        let tls: Bool
        var rest: Substring
        if url.lowercased().hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if url.lowercased().hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
        var host: Substring
        var port = tls ? 443 : 80
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":", let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
        } else {
            host = authority
        }
        // A host or path that could break a header or the request line is not an address.
        guard !host.isEmpty, host.utf8.allSatisfy({ ASCIIBytes.isLetterOrDigit($0, or: ".-_:") }),
            rest.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        var path = String(rest)
        while path.hasSuffix("/") { path.removeLast() }
        key = Key(tls: tls, host: String(host).lowercased(), port: port)
        let bracketed = host.contains(":") ? "[\(host)]" : String(host)
        hostHeader = port == (tls ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
        pathPrefix = path
    }
}
