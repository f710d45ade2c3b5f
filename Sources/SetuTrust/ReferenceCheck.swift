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
        let present = Set(files.map(\.path))
        func firstErrors(_ report: ValidationReport) -> [String: Diagnostic] {
            var errors: [String: Diagnostic] = [:]
            for diagnostic in report.diagnostics
            where diagnostic.severity == .error && present.contains(diagnostic.file) && errors[diagnostic.file] == nil {
                errors[diagnostic.file] = diagnostic
            }
            return errors
        }
        let errors = firstErrors(MarketplaceValidator().validate(files))
        guard errors.values.contains(where: { $0.rule == "ref.api" }), let known = knownAPIs() else { return errors }
        return firstErrors(MarketplaceValidator().validate(files, knownAPIs: known))
    }
}

/// Where the effective state's files are, so that a change is checked against
/// the files it can reach rather than the whole marketplace: the files of each
/// folder, and the base path each API declares.
struct ReferenceIndex {
    /// The paths in each folder, by folder (`catalog/cbse`).
    private var folders: [Substring: Set<String>] = [:]
    /// The file of each base path.
    private var basePaths: [String: String] = [:]
    /// The base paths each API file declares.
    private var basePathsOf: [String: [String]] = [:]
    /// The ids of the APIs each file declares.
    private var apiIDsOf: [String: [String]] = [:]

    /// Every API id in the state, sorted.
    var apiIDs: [String] { apiIDsOf.values.flatMap { $0 }.sorted() }

    init(files: [String: EffectiveFile]) {
        for (path, file) in files {
            folders[Self.folder(of: path), default: []].insert(path)
            if Self.mayHoldAPIs(path) { index(path, apis: file.file.apis) }
        }
    }

    /// Records a path's new version, or its deletion.
    mutating func update(_ path: String, file: PreparedFile?) {
        if file == nil {
            folders[Self.folder(of: path)]?.remove(path)
        } else {
            folders[Self.folder(of: path), default: []].insert(path)
        }
        guard Self.mayHoldAPIs(path) else { return }
        for basePath in basePathsOf.removeValue(forKey: path) ?? [] where basePaths[basePath] == path {
            basePaths[basePath] = nil
        }
        apiIDsOf[path] = nil
        if let file { index(path, apis: file.apis) }
    }

    private mutating func index(_ path: String, apis: [API]) {
        if !apis.isEmpty { apiIDsOf[path] = apis.map(\.id) }
        let declared = apis.compactMap(\.basePath)
        guard !declared.isEmpty else { return }
        basePathsOf[path] = declared
        for basePath in declared where basePaths[basePath] == nil { basePaths[basePath] = path }
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
    func scope(of changes: [(path: String, file: PreparedFile?)], in files: [String: EffectiveFile]) -> Set<String> {
        var scope = Set(changes.map(\.path))
        scope.formUnion(folders["policies"] ?? [])
        func addFolder(_ folder: String) { scope.formUnion(folders[Substring(folder)] ?? []) }
        func addAPI(of subscription: Subscription) {
            let parts = subscription.api.split(separator: "/", maxSplits: 1)
            guard parts.count == 2 else { return }
            if subscription.operations != nil {
                addFolder("catalog/\(parts[0])")
            } else {
                scope.formUnion(["catalog/\(parts[0])/publisher.yaml", "catalog/\(parts[0])/\(parts[1]).yaml",
                                 "catalog/\(parts[0])/\(parts[1]).yml"].filter { files[$0] != nil })
            }
        }
        for (path, file) in changes {
            let parts = path.split(separator: "/")
            guard parts.count == 3 else {
                return scope.union(files.keys)
            }
            let folder = "\(parts[0])/\(parts[1])"
            switch parts[0] {
            case "policies":
                return scope.union(files.keys)
            case "catalog" where parts[2] == "publisher.yaml":
                addFolder(folder)
                let before = files[path]?.file.publishers.first?.category
                if before != nil, before != file?.publishers.first?.category {
                    let prefix = "\(parts[1])/"
                    for (name, paths) in folders where name.hasPrefix("subscriptions/") {
                        for path in paths where files[path]?.file.subscriptions.first?.api.hasPrefix(prefix) == true {
                            scope.insert(path)
                        }
                    }
                }
            case "catalog":
                addFolder(folder)
                let declared = (file?.apis.compactMap(\.basePath) ?? []) + (basePathsOf[path] ?? [])
                for basePath in declared {
                    var prefix = Substring(basePath)
                    while true {
                        if let owner = basePaths[String(prefix)] { scope.insert(owner) }
                        guard let slash = prefix.lastIndex(of: "/"), slash > prefix.startIndex else { break }
                        prefix = prefix[..<slash]
                    }
                    let below = basePath + "/"
                    for (other, owner) in basePaths where other.hasPrefix(below) { scope.insert(owner) }
                }
            case "subscriptions" where parts[2] == "consumer.yaml":
                for (name, paths) in folders where name.hasPrefix("subscriptions/") {
                    scope.formUnion(paths.filter { $0.hasSuffix("/consumer.yaml") })
                }
                addFolder(folder)
                for path in folders[Substring(folder)] ?? [] {
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
