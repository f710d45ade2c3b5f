import SetuEntitlements
import SetuManifest

/// The rules that span manifests (references resolve, base paths do not clash,
/// consumers may use what they subscribe to), as history replay applies them to
/// the files a change can reach.
enum ReferenceCheck {
    /// The first error of each of `files` that the marketplace's rules find; a
    /// rule about a file that is not among them (a platform that is missing) is
    /// no file's error.
    /// - Parameter knownAPIs: every API id, when `files` are part of the
    ///   marketplace: a subscription naming another API is told the closest.
    static func errors(in files: [SourceFile], knownAPIs: () -> [String]? = { nil }) -> [String: Diagnostic] {
        errors(of: Set(files.map(\.path)), knownAPIs: knownAPIs) { known in
            MarketplaceValidator().validate(files, knownAPIs: known).diagnostics
        }
    }

    /// `errors(in:)` over files read and checked on their own, without reading any of them
    /// again (`MarketplaceValidator.checkReferences`).
    static func errors(
        in files: [PreparedFile], judging: Set<String>, checkedUpstreams: Set<String>,
        knownAPIs: () -> [String]? = { nil }
    ) -> [String: Diagnostic] {
        errors(of: Set(files.map(\.path)), knownAPIs: knownAPIs) { known in
            MarketplaceValidator().checkReferences(files, judging: judging, checkedUpstreams: checkedUpstreams, knownAPIs: known)
        }
    }

    /// The first error of each of `paths` that `rules` finds; the rules run again with every
    /// API id only when a subscription names an API they do not know, to suggest the closest.
    private static func errors(
        of paths: Set<String>, knownAPIs: () -> [String]?, _ rules: ([String]?) -> [Diagnostic]
    ) -> [String: Diagnostic] {
        func first(_ diagnostics: [Diagnostic]) -> [String: Diagnostic] {
            EntitlementDerivation.firstErrors(diagnostics.sorted()).filter { paths.contains($0.key) }
        }
        let errors = first(rules(nil))
        guard errors.values.contains(where: { $0.rule == .refApi }), let known = knownAPIs() else { return errors }
        return first(rules(known))
    }
}

/// Where the effective state's files are, so that a change is checked against
/// the files it can reach rather than the whole marketplace: the files of each
/// folder, and the base path each API declares. Each part is built from the
/// state the first time a change needs it, then kept up to date: a run that
/// replays only subscriptions builds neither.
struct ReferenceIndex: Sendable {
    /// The paths in each folder, by folder (`catalog/cbse`).
    private var folders: [Substring: Set<String>]?
    /// Where APIs are: the file of each base path, the base paths and ids each file declares.
    private var apis: APIIndex?
    /// The consumer registrations holding each client id and each key hash.
    private var credentials: CredentialIndex?

    /// The consumer registrations holding each client id and key hash, and the keys each holds.
    private struct CredentialIndex: Sendable {
        var holders: [String: Set<String>] = [:]
        var keysOf: [String: [String]] = [:]

        mutating func index(_ path: String, file: PreparedFile?) {
            for key in keysOf.removeValue(forKey: path) ?? [] { holders[key]?.remove(path) }
            let keys = ReferenceIndex.credentialKeys(file)
            guard !keys.isEmpty else { return }
            keysOf[path] = keys
            for key in keys { holders[key, default: []].insert(path) }
        }
    }

    private struct APIIndex: Sendable {
        var basePaths: [String: String] = [:]
        var basePathsOf: [String: [String]] = [:]
        var idsOf: [String: [String]] = [:]
        /// The files of the APIs whose base paths lie under each path (`/cbse` → the file of `/cbse/v3`).
        var below: [Substring: Set<String>] = [:]

        mutating func index(_ path: String, apis: [API]) {
            if !apis.isEmpty { idsOf[path] = apis.map(\.id) }
            let declared = apis.compactMap(\.basePath)
            guard !declared.isEmpty else { return }
            basePathsOf[path] = declared
            for basePath in declared {
                if basePaths[basePath] == nil { basePaths[basePath] = path }
                for prefix in Self.prefixes(of: basePath) { below[prefix, default: []].insert(path) }
            }
        }

        mutating func remove(_ path: String) {
            for basePath in basePathsOf.removeValue(forKey: path) ?? [] {
                if basePaths[basePath] == path { basePaths[basePath] = nil }
                for prefix in Self.prefixes(of: basePath) { below[prefix]?.remove(path) }
            }
            idsOf[path] = nil
        }

        /// The files whose APIs' base paths are `basePath`, contain it or lie under it, but `path`.
        func overlapping(_ basePath: String, except path: String) -> Set<String> {
            var owners = below[Substring(basePath)] ?? []
            if let owner = basePaths[basePath] { owners.insert(owner) }
            for prefix in Self.prefixes(of: basePath) {
                if let owner = basePaths[String(prefix)] { owners.insert(owner) }
            }
            owners.remove(path)
            return owners
        }

        /// The proper prefixes of a path at its slashes: `/a/b/c` → `/a/b`, `/a`.
        static func prefixes(of basePath: String) -> [Substring] {
            var prefixes: [Substring] = []
            var prefix = Substring(basePath)
            while let slash = prefix.lastIndex(of: "/"), slash > prefix.startIndex {
                prefix = prefix[..<slash]
                prefixes.append(prefix)
            }
            return prefixes
        }
    }

    init() {}

    /// Every API id in the state, sorted.
    mutating func apiIDs(in files: [String: EffectiveFile]) -> [String] {
        apiIndex(files).idsOf.values.flatMap { $0 }.sorted()
    }

    /// Records a path's new version, or its deletion.
    mutating func update(_ path: String, file: PreparedFile?) {
        if credentials != nil, path.hasSuffix("/consumer.yaml") {
            credentials!.index(path, file: file)
        }
        if folders != nil {
            if file == nil {
                folders![Self.folder(of: path)]?.remove(path)
            } else {
                folders![Self.folder(of: path), default: []].insert(path)
            }
        }
        guard apis != nil, Self.mayHoldAPIs(path) else { return }
        apis!.remove(path)
        if let file { apis!.index(path, apis: file.apis) }
    }

    /// The paths in a folder of `files` (`catalog/cbse`), which must be the state the index follows.
    mutating func paths(in folder: String, of files: [String: EffectiveFile]) -> Set<String> {
        if folders == nil {
            var built: [Substring: Set<String>] = [:]
            for path in files.keys { built[Self.folder(of: path), default: []].insert(path) }
            folders = built
        }
        return folders![Substring(folder)] ?? []
    }

    private mutating func apiIndex(_ files: [String: EffectiveFile]) -> APIIndex {
        if apis == nil {
            var built = APIIndex()
            for (path, file) in files where Self.mayHoldAPIs(path) { built.index(path, apis: file.file.apis) }
            apis = built
        }
        return apis!
    }

    /// The registration of the publisher a subscription names and the API's manifest, where
    /// names agree with paths: `cbse/class-xii-marksheet` is `catalog/cbse/class-xii-marksheet.yaml`.
    private static func files(namedBy subscription: Subscription) -> [String] {
        let api = subscription.api.split(separator: "/", maxSplits: 1)
        guard api.count == 2 else { return [] }
        return ["catalog/\(api[0])/publisher.yaml", "catalog/\(api[0])/\(api[1]).yaml"]
    }

    /// Client ids and key hashes of a consumer's registration, as keys of `credentials`.
    fileprivate static func credentialKeys(_ file: PreparedFile?) -> [String] {
        (file?.consumers ?? []).flatMap { consumer in consumer.credentials.flatMap { ["id " + $0.clientId, "key " + $0.keySHA256] } }
    }

    /// The consumer registrations that share a client id or a key hash with `file`.
    private mutating func sharingCredentials(with file: PreparedFile, in files: [String: EffectiveFile]) -> Set<String> {
        if credentials == nil {
            var built = CredentialIndex()
            for (path, file) in files where path.hasSuffix("/consumer.yaml") { built.index(path, file: file.file) }
            credentials = built
        }
        return Self.credentialKeys(file).reduce(into: Set<String>()) { $0.formUnion(credentials!.holders[$1] ?? []) }
    }

    /// The files the rules need to judge `changes` without reading any OpenAPI document,
    /// or nil when they cannot be judged so (a policy, a deletion, a registration that
    /// changes, an OpenAPI document, an API that names one, a subscription naming
    /// operations or holding several): then `scope` and a whole validation.
    /// `checkedUpstreams` gets the APIs whose upstream is as it was when last checked.
    mutating func focus(
        of changes: [(path: String, file: PreparedFile?)], in files: [String: EffectiveFile],
        policies: Set<String>, checkedUpstreams: inout Set<String>
    ) -> Set<String>? {
        // Subscriptions' rules look at consumers, APIs and publishers only; the others' at the policies too.
        var focus = Set(changes.map(\.path))
        if changes.contains(where: { !MarketplacePath.isSubscription($0.path) }) { focus.formUnion(policies) }
        for (path, file) in changes {
            guard let file, !path.hasPrefix("policies/") else { return nil }
            let parts = path.split(separator: "/")
            guard parts.count == 3 else { return nil }
            let folder = "\(parts[0])/\(parts[1])"
            if parts[0] == "subscriptions", parts[2] == "consumer.yaml" {
                // A new consumer: its own rules and the uniqueness of its credentials.
                guard files[path] == nil else { return nil }
                focus.formUnion(sharingCredentials(with: file, in: files))
            } else if parts[0] == "subscriptions" {
                let subscriptions = file.subscriptions
                guard subscriptions.count == 1, let subscription = subscriptions.first, subscription.operations == nil else { return nil }
                focus.insert("\(folder)/consumer.yaml")
                focus.formUnion(Self.files(namedBy: subscription))
            } else if parts[2] == "publisher.yaml" {
                // A new publisher, or one whose kind stays: nothing else can break.
                guard let before = files[path], before.file.publishers.first?.category == file.publishers.first?.category else {
                    if files[path] == nil { continue }
                    return nil
                }
            } else {
                guard Self.mayHoldAPIs(path), !path.hasSuffix(".openapi.yaml"), !path.hasSuffix(".openapi.json"),
                    !file.referencesOpenAPI, !file.apis.isEmpty
                else { return nil }
                focus.insert("\(folder)/publisher.yaml")
                let index = apiIndex(files)
                let before = Dictionary((files[path]?.file.apis ?? []).map { ($0.id, $0.upstreamURL) }, uniquingKeysWith: { first, _ in first })
                for api in file.apis {
                    if let url = api.upstreamURL, before[api.id] == url { checkedUpstreams.insert(api.id) }
                    guard let basePath = api.basePath else { continue }
                    for owner in index.overlapping(basePath, except: path) {
                        focus.insert(owner)
                        checkedUpstreams.formUnion(index.idsOf[owner] ?? [])
                    }
                }
            }
        }
        let changed = Set(changes.map(\.path))
        // An API the changes leave as it is had its upstream checked when it took effect.
        for path in focus where !changed.contains(path) && Self.mayHoldAPIs(path) {
            checkedUpstreams.formUnion(apiIndex(files).idsOf[path] ?? [])
        }
        return focus.filter { files[$0] != nil || changed.contains($0) }
    }

    /// The paths whose rules a set of changes can reach: the changed paths, the
    /// policies, and by kind of change:
    /// - a policy: everything;
    /// - a publisher's registration: its folder, and when its kind changes or it
    ///   goes, every subscription to its APIs;
    /// - an API or OpenAPI document: its publisher's folder and the APIs whose
    ///   base paths contain or lie under its own;
    /// - a consumer's registration: every consumer's registration, its folder, and
    ///   the publishers and APIs its subscriptions name;
    /// - a subscription: its consumer, and the API it names with its publisher
    ///   (the whole publisher's folder when it names operations).
    mutating func scope(
        of changes: [(path: String, file: PreparedFile?)], in files: [String: EffectiveFile],
        policies: Set<String>, consumers: some Sequence<String>
    ) -> Set<String> {
        var scope = Set(changes.map(\.path))
        scope.formUnion(policies)
        func addFolder(_ folder: String) { scope.formUnion(paths(in: folder, of: files)) }
        func addAPI(of subscription: Subscription) {
            if subscription.operations != nil, let publisher = subscription.api.split(separator: "/").first {
                addFolder("catalog/\(publisher)")
            } else {
                scope.formUnion(Self.files(namedBy: subscription).filter { files[$0] != nil })
            }
        }
        for (path, file) in changes {
            let parts = path.split(separator: "/")
            guard parts.count == 3, parts[0] != "policies" else {
                return scope.union(files.keys)
            }
            let folder = "\(parts[0])/\(parts[1])"
            switch parts[0] {
            case "catalog" where parts[2] == "publisher.yaml":
                addFolder(folder)
                let before = files[path]?.file.publishers.first?.category
                if before != nil, before != file?.publishers.first?.category {
                    let prefix = "\(parts[1])/"
                    for consumer in consumers {
                        for path in paths(in: "subscriptions/\(consumer)", of: files)
                        where files[path]?.file.subscriptions.first?.api.hasPrefix(prefix) == true {
                            scope.insert(path)
                        }
                    }
                }
            case "catalog":
                addFolder(folder)
                let index = apiIndex(files)
                let declared = (file?.apis.compactMap(\.basePath) ?? []) + (index.basePathsOf[path] ?? [])
                for basePath in declared { scope.formUnion(index.overlapping(basePath, except: path)) }
            case "subscriptions" where parts[2] == "consumer.yaml":
                for consumer in consumers {
                    let registration = "subscriptions/\(consumer)/consumer.yaml"
                    if files[registration] != nil { scope.insert(registration) }
                }
                addFolder(folder)
                for path in paths(in: folder, of: files) {
                    for subscription in files[path]?.file.subscriptions ?? [] { addAPI(of: subscription) }
                }
            case "subscriptions":
                scope.insert("\(folder)/consumer.yaml")
                for subscription in file?.subscriptions ?? [] { addAPI(of: subscription) }
            default:
                return scope.union(files.keys)
            }
        }
        return scope
    }

    private static func folder(of path: String) -> Substring {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return path[..<slash]
    }

    /// Whether a path may hold API manifests: a catalog file other than a publisher's registration.
    private static func mayHoldAPIs(_ path: String) -> Bool {
        path.hasPrefix("catalog/") && !path.hasSuffix("/publisher.yaml")
    }
}
