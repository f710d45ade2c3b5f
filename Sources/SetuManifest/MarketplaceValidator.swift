import Dispatch
import Foundation
import SetuConcurrency

/// A file of a marketplace repository, as read from a commit or a work tree.
public struct SourceFile: Sendable {
    /// What was found at the path.
    public enum Content: Sendable {
        /// A regular file's bytes.
        case bytes([UInt8])
        /// A file over the size limit, with its size; it was not read.
        case tooLarge(Int)
        /// A symbolic link; never followed.
        case symlink
        /// A submodule; it has no content here.
        case submodule
        /// A regular file read and checked before (`MarketplaceValidator.prepare`):
        /// validation reuses what it found instead of parsing the bytes again.
        case prepared(PreparedFile)
    }

    /// Path from the repository root, with `/` separators.
    public var path: String
    /// What was found there.
    public var content: Content

    /// Creates a source file.
    public init(path: String, content: Content) {
        self.path = path
        self.content = content
    }
}

/// The result of validating a marketplace.
public struct ValidationReport: Sendable {
    /// What the valid manifests declare (and, leniently, the invalid ones).
    public var marketplace: Marketplace
    /// Every problem found, sorted by file, line and column.
    public var diagnostics: [Diagnostic]
    /// How many YAML files were read.
    public var fileCount: Int
    /// How many manifests (YAML documents) were read.
    public var manifestCount: Int
    /// The bytes of each file that has a diagnostic, for showing the offending line.
    public var sources: [String: [UInt8]]

    /// How many diagnostics are errors.
    public var errorCount: Int { diagnostics.filter { $0.severity == .error }.count }
    /// How many diagnostics are warnings.
    public var warningCount: Int { diagnostics.filter { $0.severity == .warning }.count }
    /// Whether the marketplace has no errors.
    public var isValid: Bool { errorCount == 0 }
}

/// Read once: asking the system costs a file read each time.

/// The top-level folders a marketplace repository keeps its manifests in.
public let marketplaceRoots = ["catalog", "policies", "subscriptions"]

/// Validates a marketplace: every file's YAML, every manifest against its
/// kind's schema, then the rules that span manifests (DESIGN.md §3).
public struct MarketplaceValidator: Sendable {
    /// Limits applied to every file.
    public var limits: LoadLimits
    /// The day, YYYY-MM-DD, against which `validate` warns of credentials already past their
    /// `notAfter`; nil for no such warning, as history replay wants: its result may not
    /// depend on the day it runs.
    public var today: String?

    /// Creates a validator.
    public init(limits: LoadLimits = .standard, today: String? = nil) {
        self.limits = limits
        self.today = today
    }

    /// The problems of one file on its own: YAML, kind and place, schema, and
    /// name against path; not the rules that look at other manifests. `prepare`
    /// keeps these as a version's `problems`, which history replay decides on.
    public func checkFile(_ file: SourceFile) -> [Diagnostic] {
        var run = ValidationRun(limits: limits, files: [file])
        run.classifyAndLoad()
        run.buildMarketplace()
        return run.report().diagnostics.filter { diagnostic in
            diagnostic.severity == .error && diagnostic.file == file.path
                && (["file.", "yaml.", "manifest.", "schema."].contains { diagnostic.rule.hasPrefix($0) }
                    || ["name.path", "name.unique", "credential.hash"].contains(diagnostic.rule))
        }
    }

    /// The rules that span manifests (references, base paths, consumers' types and
    /// credentials, upstreams) over files already read and checked on their own
    /// (`prepare`), using what reading them found: nothing is classified, loaded or
    /// decoded again. History replay asks this of every change that would take effect,
    /// with the few files the change can reach. OpenAPI documents are not read: a caller
    /// whose files need them (a subscription naming operations, an API with a document)
    /// uses `validate`. Only errors are returned.
    /// - Parameters:
    ///   - judging: the files whose rules are wanted (nil: all); a family of rules (APIs,
    ///     consumers, subscriptions) runs only when one of its files is among them, since
    ///     the others were judged when they took effect.
    ///   - checkedUpstreams: APIs (by id) whose upstream was checked before against the
    ///     same platform, and is not checked again.
    public func checkReferences(_ files: [PreparedFile], judging: Set<String>? = nil, checkedUpstreams: Set<String> = [],
                                knownAPIs: [String]? = nil) -> [Diagnostic] {
        var run = ValidationRun(limits: limits, files: [])
        run.knownAPIs = knownAPIs
        run.checkedUpstreams = checkedUpstreams
        var platforms: [Platform] = []
        for file in files {
            run.bytesByPath[file.path] = file.bytes
            for manifest in file.loaded?.manifests ?? [] {
                switch manifest.entity {
                case .platform(let platform): platforms.append(platform)
                case .plan(let plan): run.marketplace.plans[manifest.name] = plan
                case .consentProvider(let provider): run.marketplace.consentProviders[manifest.name] = provider
                case .alertRule: break
                case .publisher(let publisher): run.marketplace.publishers[publisher.name] = publisher
                case .api(let api, let fields, _):
                    run.apiSpecFields[api.id] = fields
                    run.marketplace.apis[api.id] = api
                case .consumer(let consumer): run.marketplace.consumers[consumer.name] = consumer
                case .subscription(let subscription): run.marketplace.subscriptions[subscription.id] = subscription
                }
            }
        }
        run.marketplace.platform = platforms.first
        func judged(_ origins: some Sequence<ManifestOrigin>) -> Bool {
            judging.map { judging in origins.contains { judging.contains($0.file) } } ?? true
        }
        if judged(run.marketplace.apis.values.lazy.map(\.origin)) { run.checkAPIs() }
        if judged(run.marketplace.consumers.values.lazy.map(\.origin)) { run.checkConsumers() }
        if judged(run.marketplace.subscriptions.values.lazy.map(\.origin)) { run.checkSubscriptions() }
        return run.diagnostics.filter { $0.severity == .error }
    }

    /// Validates the given files, reporting every problem in one pass.
    ///
    /// - Parameter knownAPIs: the API ids to suggest from when a subscription
    ///   names one the catalog does not list; by default, those among `files`.
    ///   A caller validating part of a marketplace passes the whole catalog's.
    public func validate(_ files: [SourceFile], knownAPIs: [String]? = nil) -> ValidationReport {
        var run = ValidationRun(limits: limits, files: files)
        run.knownAPIs = knownAPIs
        run.today = today
        run.checkRepositoryLimits()
        run.classifyAndLoad()
        run.buildMarketplace()
        run.checkRules()
        return run.report()
    }
}

// MARK: - One validation run

/// What a path is in the marketplace layout, for code outside validation that
/// must agree with it (history replay's ownership and approval rules).
public enum MarketplacePath {
    /// Whether the path holds Subscriptions: `subscriptions/<consumer>/<name>.yaml`.
    public static func isSubscription(_ path: String) -> Bool {
        subscriptionConsumer(path) != nil
    }

    /// The consumer whose folder holds a Subscriptions path, `nil` for any other path.
    public static func subscriptionConsumer(_ path: String) -> String? {
        if case .subscriptions(let consumer, _) = FileRole.of(path) { return consumer }
        return nil
    }

    /// Whether the path registers who is who: the platform policy, a publisher or a consumer.
    public static func isRegistration(_ path: String) -> Bool {
        switch FileRole.of(path) {
        case .platform, .publisher, .consumer: return true
        default: return false
        }
    }
}

/// Where a file sits in the marketplace layout, which decides the kinds it may hold.
enum FileRole: Equatable {
    case platform
    case policies
    case publisher(String)
    case apis(publisher: String, stem: String)
    case consumer(String)
    case subscriptions(consumer: String, stem: String)
    case openapi
    case ignored
    case misplaced(String)

    var allowedKinds: [ManifestKind] {
        switch self {
        case .platform: return [.platform]
        case .policies: return [.plan, .consentProvider, .alertRule]
        case .publisher: return [.publisher]
        case .apis: return [.api]
        case .consumer: return [.consumer]
        case .subscriptions: return [.subscription]
        case .openapi, .ignored, .misplaced: return []
        }
    }

    var singleDocument: Bool {
        switch self {
        case .platform, .publisher, .consumer: return true
        default: return false
        }
    }

    static func of(_ path: String) -> FileRole {
        var path = path
        path.makeContiguousUTF8()
        return path.utf8.withContiguousStorageIfAvailable { bytes in of(path, bytes) }!
    }

    /// Every validation and every replayed change asks this, so it scans the
    /// path's bytes once, finding the slashes the layout cares about, and
    /// compares extensions byte by byte rather than lowercasing.
    private static func of(_ path: String, _ bytes: UnsafeBufferPointer<UInt8>) -> FileRole {
        let slash = UInt8(ascii: "/")
        var slashes = 0, first = -1, second = -1, last = -1
        for (offset, byte) in bytes.enumerated() where byte == slash {
            slashes += 1
            if first < 0 { first = offset } else if second < 0 { second = offset }
            last = offset
        }
        let components = slashes + 1
        let fileStart = last + 1
        func text(_ start: Int, _ end: Int) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        func hasExtension(_ suffix: StaticString) -> Bool {
            let length = suffix.utf8CodeUnitCount
            guard bytes.count - fileStart >= length else { return false }
            let expected = UnsafeBufferPointer(start: suffix.utf8Start, count: length)
            for index in 0..<length {
                let byte = bytes[bytes.count - length + index]
                let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
                if lowered != expected[index] { return false }
            }
            return true
        }
        func top(is name: StaticString) -> Bool {
            let end = first < 0 ? bytes.count : first
            return end == name.utf8CodeUnitCount && memcmp(bytes.baseAddress!, name.utf8Start, end) == 0
        }
        let root = top(is: "catalog") ? "catalog" : top(is: "policies") ? "policies" : top(is: "subscriptions") ? "subscriptions" : ""
        let isOpenAPI = hasExtension(".openapi.yaml") || hasExtension(".openapi.yml") || hasExtension(".openapi.json")
        if root == "catalog", components >= 3, isOpenAPI { return .openapi }
        if hasExtension(".yml") { return .misplaced("use the .yaml extension: rename it to \(text(fileStart, bytes.count - 4)).yaml") }
        guard hasExtension(".yaml") else { return .ignored }
        let stem = text(fileStart, bytes.count - 5)
        switch (root, components) {
        case ("policies", 2):
            return stem == "platform" ? .platform : .policies
        case ("catalog", 3):
            let publisher = text(first + 1, second)
            return stem == "publisher" ? .publisher(publisher) : .apis(publisher: publisher, stem: stem)
        case ("subscriptions", 3):
            let consumer = text(first + 1, second)
            return stem == "consumer" ? .consumer(consumer) : .subscriptions(consumer: consumer, stem: stem)
        case ("policies", _):
            return .misplaced("policy files sit directly in policies/, e.g. policies/plans.yaml")
        case ("catalog", _):
            return .misplaced("catalog files sit in catalog/<publisher>/, e.g. catalog/cbse/class-xii-marksheet.yaml")
        default:
            return .misplaced("subscription files sit in subscriptions/<consumer>/, e.g. subscriptions/acme-bank/cbse-marksheet.yaml")
        }
    }
}

/// A manifest decoded into its model value, as the parallel phase leaves it.
enum ManifestEntity {
    case platform(Platform)
    case plan(Plan)
    case consentProvider(ConsentProvider)
    case alertRule(AlertRule)
    case publisher(Publisher)
    /// An API, the fields its spec writes (some rules ask whether a field is
    /// there at all), and its OpenAPI path as written.
    case api(API, specFields: Set<String>, openapi: String?)
    case consumer(Consumer)
    case subscription(Subscription)
}

/// A manifest document that has a known kind and a name. Only its decoded value
/// is kept: parse trees are large, so locations are found again by re-reading
/// the file in the rare case a later rule reports on it.
struct LoadedManifest {
    var kind: ManifestKind
    var name: String
    var entity: ManifestEntity
    var origin: ManifestOrigin
    var role: FileRole
    var documentsInFile: Int
}

/// The per-file result of the parallel phase.
struct LoadedFile {
    var path: String
    var manifests: [LoadedManifest] = []
    var diagnostics: [Diagnostic] = []
    var documentCount = 0
}

struct ValidationRun {
    let limits: LoadLimits
    let files: [SourceFile]
    var diagnostics: [Diagnostic] = []
    var marketplace = Marketplace()
    var parsedForLocations: [String: [YAMLDocument]] = [:]
    var apiSpecFields: [String: Set<String>] = [:]
    var manifests: [LoadedManifest] = []
    var bytesByPath: [String: [UInt8]] = [:]
    var openapiFiles: Set<String> = []
    /// Files present but not read (links, submodules, oversized), already reported.
    var unreadable: Set<String> = []
    var referencedOpenAPI: Set<String> = []
    var knownAPIs: [String]?
    /// APIs whose upstream is not checked (`MarketplaceValidator.checkReferences`).
    var checkedUpstreams: Set<String> = []
    var today: String?
    var fileCount = 0
    var manifestCount = 0

    init(limits: LoadLimits, files: [SourceFile]) {
        self.limits = limits
        self.files = files
    }

    mutating func checkRepositoryLimits() {
        if files.count > limits.maxFiles {
            diagnostics.append(Diagnostic(file: ".", rule: "repo.too-large",
                                          message: "the repository has \(files.count) files under \(marketplaceRoots.joined(separator: ", ")), over the limit of \(limits.maxFiles)"))
        }
    }

    // MARK: Loading

    mutating func classifyAndLoad() {
        var toLoad: [(path: String, bytes: [UInt8], role: FileRole)] = []
        // In file order: a file loaded before, or nil for the next one of `toLoad`.
        var order: [LoadedFile?] = []
        var totalBytes = 0
        for file in files {
            let role = FileRole.of(file.path)
            let bytes: [UInt8]
            // What a prepared file's earlier reading found, reused instead of loading it again.
            var loadedBefore: LoadedFile?
            switch file.content {
            case .symlink:
                unreadable.insert(file.path)
                diagnostics.append(Diagnostic(file: file.path, rule: "file.symlink",
                                              message: "symbolic links are not allowed in a marketplace",
                                              fix: "replace the link with the file it points to"))
                continue
            case .submodule:
                unreadable.insert(file.path)
                diagnostics.append(Diagnostic(file: file.path, rule: "file.submodule",
                                              message: "submodules are not allowed in a marketplace",
                                              fix: "remove the submodule (git rm) and commit its files directly"))
                continue
            case .tooLarge(let size):
                unreadable.insert(file.path)
                if role != .ignored {
                    diagnostics.append(Diagnostic(file: file.path, rule: "file.too-large",
                                                  message: "file is \(size) bytes, over the limit of \(limits.maxFileBytes) bytes; it was not read",
                                                  fix: "split it into smaller files"))
                }
                continue
            case .bytes(let read):
                bytes = read
            case .prepared(let prepared):
                bytes = prepared.bytes
                loadedBefore = prepared.loaded
            }
            switch role {
            case .ignored:
                continue
            case .misplaced(let fix):
                diagnostics.append(Diagnostic(file: file.path, rule: "file.location",
                                              message: "this file is not where any manifest belongs", fix: fix))
                continue
            case .openapi:
                openapiFiles.insert(file.path)
                bytesByPath[file.path] = bytes
                continue
            default:
                totalBytes += bytes.count
                if totalBytes > limits.maxRepositoryBytes {
                    diagnostics.append(Diagnostic(file: file.path, rule: "repo.too-large",
                                                  message: "the manifests add up to more than \(limits.maxRepositoryBytes) bytes; this file and the rest were not read"))
                    break
                }
                bytesByPath[file.path] = bytes
                if loadedBefore == nil { toLoad.append((file.path, bytes, role)) }
                order.append(loadedBefore)
            }
            if totalBytes > limits.maxRepositoryBytes { break }
        }
        fileCount = order.count

        var justLoaded = load(toLoad).makeIterator()
        for loaded in order.map({ $0 ?? justLoaded.next()! }) {
            diagnostics += loaded.diagnostics
            manifestCount += loaded.documentCount
            manifests += loaded.manifests
        }
    }

    /// Loads files in order; they are independent until the cross-manifest rules, so in parallel.
    func load(_ toLoad: [(path: String, bytes: [UInt8], role: FileRole)]) -> [LoadedFile] {
        guard !toLoad.isEmpty else { return [] }
        let limits = self.limits
        let schemas = ManifestSchemas.shared
        return toLoad.withUnsafeBufferPointer { pending in
            let pending = UnsafeSendable(pending)
            return Parallel.map(pending.value.count) { item in
                let entry = pending.value[item]
                return Self.load(path: entry.path, bytes: entry.bytes, role: entry.role, limits: limits, schemas: schemas).file
            }
        }
    }

    /// Parses a file and examines its documents; also returns the documents that were not empty.
    static func load(path: String, bytes: [UInt8], role: FileRole, limits: LoadLimits,
                     schemas: ManifestSchemas) -> (file: LoadedFile, documents: [JSONValue]) {
        let yamlDocuments: [YAMLDocument]
        switch YAMLLoader.load(bytes, file: path, limits: limits) {
        case .failure(let diagnostic):
            return (LoadedFile(path: path, diagnostics: [diagnostic]), [])
        case .success(let parsed):
            yamlDocuments = parsed.filter { $0.value != .null }
        }
        let documents = yamlDocuments.map(\.value)
        let file = examine(documents, path: path, role: role, schemas: schemas) { index, pointer in
            pointer.map { yamlDocuments[index].location(of: $0) } ?? yamlDocuments[index].start
        }
        return (file, documents)
    }

    /// Checks a file's documents one by one (kind, place, schema) and decodes those
    /// that name a manifest. Without `schemas` only the decoding is done: a file
    /// whose problems were found before (a stored `PreparedFile`) needs no more.
    static func examine(_ documents: [JSONValue], path: String, role: FileRole, schemas: ManifestSchemas?,
                        locate: (_ document: Int, _ pointer: JSONPointer?) -> SourceLocation) -> LoadedFile {
        var loaded = LoadedFile(path: path)
        loaded.documentCount = documents.count
        if documents.isEmpty {
            loaded.diagnostics.append(Diagnostic(file: path, rule: "manifest.empty", message: "the file holds no manifest",
                                                 fix: "add a manifest, or delete the file"))
            return loaded
        }
        if role.singleDocument, documents.count > 1 {
            loaded.diagnostics.append(Diagnostic(file: path, location: locate(1, nil), rule: "manifest.single-document",
                                                 message: "\(path.split(separator: "/").last!) holds exactly one manifest, but this file has \(documents.count)",
                                                 fix: "move the other documents to files of their own"))
        }
        let allowed = role.allowedKinds
        for (index, document) in documents.enumerated() {
            let origin = ManifestOrigin(file: path, document: index)
            func report(_ pointer: JSONPointer, _ rule: String, _ message: String, _ fix: String?) {
                loaded.diagnostics.append(Diagnostic(file: path, location: locate(index, pointer), pointer: pointer,
                                                     rule: rule, message: message, fix: fix))
            }
            guard case .object = document else {
                report(JSONPointer(), "schema.type", "must be a mapping with apiVersion, kind, metadata and spec, not \(render(document))", nil)
                continue
            }
            let expected = allowed.map(\.rawValue).joined(separator: ", ")
            guard let kindName = document["kind"]?.stringValue else {
                report(JSONPointer(), "manifest.kind", "is missing 'kind'", "add 'kind: \(allowed.first?.rawValue ?? "")'; this file may hold: \(expected)")
                continue
            }
            guard let kind = ManifestKind(rawValue: kindName) else {
                let suggestion = closest(to: kindName, in: ManifestKind.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                report(JSONPointer(["kind"]), "manifest.kind", "'\(kindName)' is not a kind of manifest\(suggestion)", "this file may hold: \(expected)")
                continue
            }
            guard allowed.contains(kind) else {
                report(JSONPointer(["kind"]), "manifest.location", "a \(kind.rawValue) does not belong in \(path)", Self.home(of: kind))
                continue
            }
            for violation in schemas?.schema(for: kind).violations(of: document) ?? [] {
                report(violation.pointer, violation.rule ?? "schema." + kebab(violation.keyword),
                       violation.message, violation.fix)
            }
            guard let name = document["metadata"]?["name"]?.stringValue, !name.isEmpty else { continue }
            loaded.manifests.append(LoadedManifest(kind: kind, name: name, entity: decode(document, kind: kind, name: name, role: role, origin: origin),
                                                   origin: origin, role: role, documentsInFile: documents.count))
        }
        return loaded
    }

    static func decode(_ value: JSONValue, kind: ManifestKind, name: String, role: FileRole, origin: ManifestOrigin) -> ManifestEntity {
        switch (kind, role) {
        case (.platform, _): return .platform(ManifestDecoding.platform(value, name: name, origin: origin))
        case (.plan, _): return .plan(ManifestDecoding.plan(value, name: name, origin: origin))
        case (.consentProvider, _): return .consentProvider(ManifestDecoding.consentProvider(value, name: name, origin: origin))
        case (.alertRule, _): return .alertRule(ManifestDecoding.alertRule(value, name: name, origin: origin))
        case (.publisher, .publisher(let folder)): return .publisher(ManifestDecoding.publisher(value, name: folder, origin: origin))
        case (.api, .apis(let publisher, _)):
            return .api(ManifestDecoding.api(value, publisher: publisher, name: name, origin: origin),
                        specFields: Set(value["spec"]?.objectValue?.keys ?? [:].keys),
                        openapi: value["spec"]?["openapi"]?.stringValue)
        case (.consumer, .consumer(let folder)): return .consumer(ManifestDecoding.consumer(value, name: folder, origin: origin))
        case (.subscription, .subscriptions(let consumer, _)):
            return .subscription(ManifestDecoding.subscription(value, consumer: consumer, name: name, origin: origin))
        default:
            // `load` admits a kind only in a file whose role allows it, so the pairs above are all there are.
            preconditionFailure("\(kind) in a file for \(role)")
        }
    }

    static func home(of kind: ManifestKind) -> String {
        switch kind {
        case .platform: return "the Platform goes in policies/platform.yaml"
        case .plan, .consentProvider, .alertRule: return "a \(kind.rawValue) goes in a file in policies/, e.g. policies/plans.yaml"
        case .publisher: return "a Publisher goes in catalog/<name>/publisher.yaml"
        case .api: return "an API goes in catalog/<publisher>/<name>.yaml"
        case .consumer: return "a Consumer goes in subscriptions/<name>/consumer.yaml"
        case .subscription: return "a Subscription goes in subscriptions/<consumer>/<name>.yaml"
        }
    }

    // MARK: Building the model

    mutating func buildMarketplace() {
        var seen: [String: ManifestOrigin] = [:]
        var platforms: [Platform] = []
        for manifest in manifests {
            let name = manifest.name
            let origin = manifest.origin
            var id = manifest.kind.rawValue + " " + name
            // Names agree with paths: the folder names the publisher or consumer, and a
            // file holding one manifest is named after it.
            switch manifest.role {
            case .publisher(let folder), .consumer(let folder):
                if name != folder {
                    report(origin, ["metadata", "name"], "name.path",
                           "is '\(name)', but the folder says '\(folder)'",
                           fix: "rename the folder to \(name), or set metadata.name to \(folder)")
                }
            case .apis(_, let stem), .subscriptions(_, let stem):
                if manifest.documentsInFile == 1, name != stem {
                    report(origin, ["metadata", "name"], "name.path",
                           "is '\(name)', but the file is named '\(stem).yaml'",
                           fix: "rename the file to \(name).yaml, or set metadata.name to \(stem)")
                }
            default:
                break
            }
            switch manifest.role {
            case .apis(let publisher, _): id = "API " + publisher + "/" + name
            case .subscriptions(let consumer, _): id = "Subscription " + consumer + "/" + name
            default: break
            }
            if let first = seen[id] {
                report(origin, ["metadata", "name"], "name.unique",
                       "\(id) is already defined in \(first.file)",
                       fix: "give this \(manifest.kind.rawValue) another name, or remove one of them")
                continue
            }
            seen[id] = origin

            switch manifest.entity {
            case .platform(let platform): platforms.append(platform)
            case .plan(let plan): marketplace.plans[name] = plan
            case .consentProvider(let provider): marketplace.consentProviders[name] = provider
            case .alertRule(let rule): marketplace.alertRules[name] = rule
            case .publisher(let publisher): marketplace.publishers[publisher.name] = publisher
            case .api(var api, let fields, let openapi):
                api.openapiPath = resolveOpenAPIPath(openapi, for: origin)
                apiSpecFields[api.id] = fields
                marketplace.apis[api.id] = api
            case .consumer(let consumer): marketplace.consumers[consumer.name] = consumer
            case .subscription(let subscription): marketplace.subscriptions[subscription.id] = subscription
            }
        }
        manifests = []
        marketplace.platform = platforms.first
        if platforms.isEmpty {
            diagnostics.append(Diagnostic(file: "policies/platform.yaml", rule: "platform.missing",
                                          message: "the marketplace has no Platform policy",
                                          fix: "add policies/platform.yaml (setu init writes one)"))
        }
    }

    /// The OpenAPI path of an API, from the repository root; `nil` (and a
    /// diagnostic) when it is absent, escapes the publisher's folder, or names no file.
    mutating func resolveOpenAPIPath(_ written: String?, for origin: ManifestOrigin) -> String? {
        guard let written else { return nil }
        let pointer = ["spec", "openapi"]
        let folder = origin.file.split(separator: "/").dropLast().map(String.init)
        guard !written.hasPrefix("/"), !written.contains("\\"), !written.contains("://") else {
            report(origin, pointer, "openapi.path", "'\(written)' must be a path relative to this file",
                   fix: "put the document beside this file and name it, e.g. openapi: \(origin.file.split(separator: "/").last!.dropLast(5)).openapi.yaml")
            return nil
        }
        var parts = folder
        for component in written.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                parts.removeLast()
            default:
                parts.append(String(component))
            }
            if parts.count < folder.count || Array(parts.prefix(folder.count)) != folder {
                report(origin, pointer, "openapi.path",
                       "'\(written)' leads outside \(folder.joined(separator: "/"))/; an OpenAPI document must stay inside its publisher's folder",
                       fix: "move the document into \(folder.joined(separator: "/"))/ and point at it there")
                return nil
            }
        }
        let path = parts.joined(separator: "/")
        referencedOpenAPI.insert(path)
        guard FileRole.of(path) == .openapi else {
            report(origin, pointer, "openapi.path", "'\(written)' must name a file ending in .openapi.yaml or .openapi.json",
                   fix: "rename the document, e.g. to \(path.split(separator: "/").last!.split(separator: ".").first!).openapi.yaml")
            return nil
        }
        guard openapiFiles.contains(path) else {
            if !unreadable.contains(path) {
                report(origin, pointer, "openapi.missing", "'\(written)' does not exist (looked for \(path))",
                       fix: "add the OpenAPI document at \(path), or correct the path")
            }
            return nil
        }
        return path
    }

    // MARK: Rules across manifests

    mutating func checkRules() {
        checkOpenAPIDocuments()
        checkAPIs()
        checkConsumers()
        checkSubscriptions()
        checkAlertRules()
        for path in openapiFiles.subtracting(referencedOpenAPI).sorted() {
            diagnostics.append(Diagnostic(.warning, file: path, rule: "openapi.unreferenced",
                                          message: "no API manifest refers to this OpenAPI document",
                                          fix: "refer to it from an API's spec.openapi, or delete it"))
        }
    }

    mutating func checkOpenAPIDocuments() {
        var parsed: [String: OpenAPIDocument] = [:]
        for path in referencedOpenAPI.intersection(openapiFiles).sorted() {
            let bytes = bytesByPath[path] ?? []
            switch YAMLLoader.load(bytes, file: path, limits: limits) {
            case .failure(let diagnostic):
                diagnostics.append(diagnostic)
            case .success(let loaded):
                guard loaded.count == 1, let document = loaded.first else {
                    diagnostics.append(Diagnostic(file: path, rule: "openapi.parse",
                                                  message: "an OpenAPI document is one YAML document, but this file has \(loaded.count)"))
                    continue
                }
                do {
                    let openapi = try OpenAPIDocument(document.value)
                    parsed[path] = openapi
                    var seen: [String: String] = [:]
                    for operation in openapi.operations {
                        let pointer = JSONPointer(["paths", operation.path, operation.method.lowercased()])
                        guard let id = operation.operationId else {
                            diagnostics.append(Diagnostic(.warning, file: path, location: document.location(of: pointer), pointer: pointer,
                                                          rule: "openapi.operation-id",
                                                          message: "\(operation.method) \(operation.path) has no operationId, so subscriptions cannot name it",
                                                          fix: "add an operationId"))
                            continue
                        }
                        if let first = seen[id] {
                            diagnostics.append(Diagnostic(file: path, location: document.location(of: pointer.appending("operationId")),
                                                          pointer: pointer.appending("operationId"), rule: "openapi.operation-id",
                                                          message: "operationId '\(id)' is also used by \(first)",
                                                          fix: "give each operation its own operationId"))
                        }
                        seen[id] = "\(operation.method) \(operation.path)"
                    }
                } catch {
                    diagnostics.append(Diagnostic(file: path, location: document.location(of: error.pointer), pointer: error.pointer,
                                                  rule: "openapi.parse", message: error.message))
                }
            }
        }
        for (id, api) in marketplace.apis {
            if let path = api.openapiPath, let document = parsed[path] {
                marketplace.apis[id]?.operations = document.operations
                marketplace.apis[id]?.schemaDocument = document.schemaDocument
            }
        }
    }

    mutating func checkAPIs() {
        var basePaths: [(path: String, api: API)] = []
        for id in marketplace.apis.keys.sorted() {
            let api = marketplace.apis[id]!
            let origin = api.origin
            let fields = apiSpecFields[api.id] ?? []
            guard let publisher = marketplace.publishers[api.publisher] else {
                report(origin, [], "ref.publisher", "API \(api.id) has no publisher: catalog/\(api.publisher)/publisher.yaml is missing or invalid",
                       fix: "add catalog/\(api.publisher)/publisher.yaml")
                continue
            }
            if publisher.category == .listing {
                if api.listingURL == nil {
                    report(origin, ["spec"], "api.listing", "is missing 'listing': \(api.publisher) is a listing publisher, so its APIs give a listing URL",
                           fix: "add listing: {url: https://…} where the API is documented")
                }
                for field in ["upstream", "basePath", "plans"] where fields.contains(field) {
                    report(origin, ["spec", field], "api.listing", "is not allowed: listing APIs are never proxied by the gateway",
                           fix: "remove \(field)")
                }
                continue
            }
            if api.listingURL != nil {
                report(origin, ["spec", "listing"], "api.listing", "is only for listing publishers' APIs; \(api.publisher) is a \(publisher.category.rawValue) publisher",
                       fix: "remove listing")
            }
            if !fields.contains("upstream") {
                report(origin, ["spec"], "api.upstream", "is missing 'upstream': the gateway needs to know where to send calls",
                       fix: "add upstream: {url: https://…}")
            }
            if let basePath = api.basePath {
                basePaths.append((basePath, api))
            } else if !fields.contains("basePath") {
                report(origin, ["spec"], "api.base-path", "is missing 'basePath': the gateway serves each API under its own path",
                       fix: "add basePath: /\(api.publisher)/\(api.name)")
            }
            if api.plans.isEmpty {
                report(origin, ["spec"], "api.plans", "offers no plans, so nobody can subscribe",
                       fix: "add plans: [\(marketplace.plans.keys.sorted().first ?? "standard")]")
            }
            for (index, plan) in api.plans.enumerated() where marketplace.plans[plan] == nil {
                report(origin, ["spec", "plans", String(index)], "ref.plan", "names plan '\(plan)', which no policies file defines",
                       fix: marketplace.plans.isEmpty ? "define it as a Plan in policies/plans.yaml"
                           : "use one of: \(marketplace.plans.keys.sorted().joined(separator: ", ")), or define it in policies/plans.yaml")
            }
            if let url = api.upstreamURL, !checkedUpstreams.contains(api.id) {
                checkUpstream(url, origin: origin)
            }
        }
        // Base paths: reserved prefix, then duplicates and overlaps (one a segment
        // prefix of another). Each path is checked against its own prefixes, looked
        // up by value, so the check stays linear in the number of APIs.
        basePaths.sort { ($0.path, $0.api.id) < ($1.path, $1.api.id) }
        var owners: [String: API] = [:]
        for entry in basePaths {
            if entry.path == "/-" || entry.path.hasPrefix("/-/") {
                report(entry.api.origin, ["spec", "basePath"], "api.base-path", "'\(entry.path)' is reserved for the marketplace's own pages",
                       fix: "choose a base path that does not start with /-")
            }
            var prefixes = [entry.path]
            var prefix = Substring(entry.path)
            while let slash = prefix.lastIndex(of: "/"), slash > prefix.startIndex {
                prefix = prefix[..<slash]
                prefixes.append(String(prefix))
            }
            if let (path, other) = prefixes.lazy.compactMap({ path in owners[path].map { (path, $0) } }).first {
                let how = path == entry.path ? "is the same as" : "lies under"
                report(entry.api.origin, ["spec", "basePath"], "api.base-path",
                       "'\(entry.path)' \(how) the base path '\(path)' of \(other.id) (\(other.origin.file))",
                       fix: "give each API a base path of its own that no other contains")
            }
            if owners[entry.path] == nil { owners[entry.path] = entry.api }
        }
    }

    mutating func checkUpstream(_ url: String, origin: ManifestOrigin) {
        let pointer = ["spec", "upstream", "url"]
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host?.lowercased(), !host.isEmpty else {
            report(origin, pointer, "upstream.url", "'\(url)' is not a URL the gateway can call", fix: "write it as https://host/path")
            return
        }
        let platform = marketplace.platform
        if scheme == "http", platform?.allowHTTP != true {
            report(origin, pointer, "upstream.scheme", "'\(url)' uses plain http, which the platform does not allow",
                   fix: "use https://, or set upstreams.allowHTTP: true in policies/platform.yaml")
        }
        let address = UpstreamAddress.classify(host)
        switch address {
        case .linkLocal, .metadata, .unspecified:
            report(origin, pointer, "upstream.address", "'\(host)' is \(address.phrase), which an upstream may never be",
                   fix: "point the upstream at the API's real host")
            return
        case .loopback:
            if platform?.allowLoopback != true {
                report(origin, pointer, "upstream.address", "'\(host)' is \(address.phrase), which the platform does not allow",
                       fix: "point the upstream at the API's real host, or set upstreams.allowLoopback: true in policies/platform.yaml")
            }
            return
        case .privateRange:
            if platform?.allowPrivate != true {
                report(origin, pointer, "upstream.address", "'\(host)' is \(address.phrase), which the platform does not allow",
                       fix: "point the upstream at the API's real host, or set upstreams.allowPrivate: true in policies/platform.yaml")
            }
            return
        case .public:
            break
        }
        guard let allowed = platform?.allowedUpstreamHosts else { return }
        let matches = allowed.contains { pattern in
            pattern.hasPrefix("*.") ? host.hasSuffix(String(pattern.dropFirst(1))) : host == pattern
        }
        if !matches {
            report(origin, pointer, "upstream.allow-list", "host '\(host)' is not in the platform's upstream allow-list",
                   fix: "ask an admin to add it to upstreams.allow in policies/platform.yaml (allowed now: \(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))")
        }
    }

    mutating func checkConsumers() {
        var clientIds: [String: String] = [:]
        var keyHashes: [String: String] = [:]
        for name in marketplace.consumers.keys.sorted() {
            let consumer = marketplace.consumers[name]!
            let origin = consumer.origin
            if consumer.category == .authorizedPartner {
                if consumer.partnerProvider == nil {
                    report(origin, ["spec"], "consumer.partner", "is an authorized partner, so it needs 'partner': the consent provider and the client id it issued",
                           fix: "add partner: {provider: \(marketplace.consentProviders.keys.sorted().first ?? "meripehchaan"), clientId: …}")
                }
            } else if consumer.partnerProvider != nil {
                report(origin, ["spec", "partner"], "consumer.partner", "is only for authorized partners; this consumer is offline",
                       fix: "remove partner, or set type: authorized-partner")
            }
            if let provider = consumer.partnerProvider, marketplace.consentProviders[provider] == nil {
                report(origin, ["spec", "partner", "provider"], "ref.consent-provider", "names consent provider '\(provider)', which policies do not define",
                       fix: marketplace.consentProviders.isEmpty ? "define it as a ConsentProvider in policies/consent-providers.yaml"
                           : "use one of: \(marketplace.consentProviders.keys.sorted().joined(separator: ", "))")
            }
            for (index, credential) in consumer.credentials.enumerated() {
                let pointer = ["spec", "credentials", String(index)]
                // Several keys of one consumer may share a client id, so a key can be rotated
                // without changing what callers send; another consumer's may not.
                if let first = clientIds[credential.clientId], first != consumer.name {
                    report(origin, pointer + ["clientId"], "credential.client-id", "client id '\(credential.clientId)' is already used by consumer \(first)",
                           fix: "choose another client id")
                } else {
                    clientIds[credential.clientId] = consumer.name
                }
                if let today, let notAfter = credential.notAfter, ManifestDate.isValid(notAfter), notAfter < today {
                    report(origin, pointer + ["notAfter"], "credential.expired",
                           "the key of client id '\(credential.clientId)' expired on \(notAfter); the gateway refuses it",
                           fix: "remove this credential, or rotate the key with `setu keygen --rotate --client-id \(credential.clientId)`",
                           severity: .warning)
                }
                if credential.keySHA256.utf8.count == 64 {
                    if let first = keyHashes[credential.keySHA256] {
                        report(origin, pointer + ["keySHA256"], "credential.hash", "the same key hash is already used by \(first)",
                               fix: "make a new key with `setu keygen` for each credential")
                    } else {
                        keyHashes[credential.keySHA256] = "consumer \(consumer.name)"
                    }
                }
                checkDay(credential.notBefore, origin, pointer + ["notBefore"])
                checkDay(credential.notAfter, origin, pointer + ["notAfter"])
                if let start = credential.notBefore, let end = credential.notAfter, start > end {
                    report(origin, pointer + ["notAfter"], "credential.dates", "\(end) comes before notBefore \(start)",
                           fix: "make notAfter later than notBefore")
                }
            }
        }
    }

    /// A date the schema's pattern let through may still name no day, like 2027-02-30.
    mutating func checkDay(_ date: String?, _ origin: ManifestOrigin, _ tokens: [String]) {
        guard let date, let missing = ManifestDate.missingDay(date) else { return }
        report(origin, tokens, "date.calendar", "\(date) is not a day: \(missing.problem)", fix: "use a day that exists, such as \(missing.lastDay)")
    }

    mutating func checkSubscriptions() {
        // A registration that failed its schema may hold a kind it does not say: its own error is the one to report.
        let invalidFiles = Set(diagnostics.lazy.filter { $0.severity == .error }.map(\.file))
        for id in marketplace.subscriptions.keys.sorted() {
            let subscription = marketplace.subscriptions[id]!
            let origin = subscription.origin
            checkDay(subscription.notAfter, origin, ["spec", "notAfter"])
            if marketplace.consumers[subscription.consumer] == nil {
                report(origin, [], "ref.consumer", "subscription \(subscription.id) has no consumer: subscriptions/\(subscription.consumer)/consumer.yaml is missing or invalid",
                       fix: "add subscriptions/\(subscription.consumer)/consumer.yaml")
            }
            guard let api = marketplace.apis[subscription.api] else {
                let suggestion = closest(to: subscription.api, in: knownAPIs ?? Array(marketplace.apis.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                report(origin, ["spec", "api"], "ref.api", "names API '\(subscription.api)', which the catalog does not list\(suggestion)",
                       fix: "use an API id from `setu catalog`")
                continue
            }
            let category = marketplace.publishers[api.publisher]?.category
            if category == .listing {
                report(origin, ["spec", "api"], "subscription.listing", "names \(api.id), a listing API: listing APIs are for information only and cannot be subscribed to",
                       fix: "remove this subscription")
                continue
            }
            if let consumer = marketplace.consumers[subscription.consumer], consumer.category == .authorizedPartner,
               let publisher = marketplace.publishers[api.publisher], publisher.category != .document,
               !invalidFiles.contains(consumer.origin.file), !invalidFiles.contains(publisher.origin.file) {
                let category = publisher.category
                report(origin, ["spec", "api"], "subscription.consumer-type",
                       "names \(api.id), a \(category.rawValue) API, but \(consumer.name) is an authorized partner: partners reach users' documents with their consent, so they subscribe to document APIs only",
                       fix: "subscribe from an offline consumer, or to a document API")
            }
            if !subscription.plan.isEmpty, !api.plans.contains(subscription.plan) {
                report(origin, ["spec", "plan"], "ref.plan", "'\(subscription.plan)' is not a plan \(api.id) offers",
                       fix: api.plans.isEmpty ? "the API offers no plans yet" : "use one of: \(api.plans.joined(separator: ", "))")
            }
            if category == .document, (subscription.purpose ?? "").isEmpty {
                report(origin, ["spec"], "subscription.purpose", "is missing 'purpose': \(api.id) serves users' documents, so the publisher needs to know why you want it",
                       fix: "add purpose: a sentence on why you need the API")
            }
            if let operations = subscription.operations {
                let known = Set(api.operations.compactMap(\.operationId))
                if api.openapiPath == nil {
                    report(origin, ["spec", "operations"], "ref.operation", "names operations, but \(api.id) has no OpenAPI document to name them from",
                           fix: "remove operations to subscribe to the whole API")
                } else {
                    for (index, operation) in operations.enumerated() where !known.contains(operation) {
                        let suggestion = closest(to: operation, in: Array(known)).map { " (did you mean '\($0)'?)" } ?? ""
                        report(origin, ["spec", "operations", String(index)], "ref.operation",
                               "'\(operation)' is not an operationId of \(api.id)\(suggestion)",
                               fix: "use operationIds from `setu catalog show \(api.id)`")
                    }
                }
            }
        }
    }

    mutating func checkAlertRules() {
        for name in marketplace.alertRules.keys.sorted() {
            let rule = marketplace.alertRules[name]!
            if let api = rule.api, marketplace.apis[api] == nil {
                report(rule.origin, ["spec", "selector", "api"], "ref.api", "names API '\(api)', which the catalog does not list", severity: .warning)
            }
            if let publisher = rule.publisher, marketplace.publishers[publisher] == nil {
                report(rule.origin, ["spec", "selector", "publisher"], "ref.publisher", "names publisher '\(publisher)', which the catalog does not list", severity: .warning)
            }
            if let consumer = rule.consumer, marketplace.consumers[consumer] == nil {
                report(rule.origin, ["spec", "selector", "consumer"], "ref.consumer", "names consumer '\(consumer)', which does not exist", severity: .warning)
            }
        }
    }

    // MARK: Reporting

    mutating func report(_ origin: ManifestOrigin, _ tokens: [String], _ rule: String, _ message: String,
                         fix: String? = nil, severity: Diagnostic.Severity = .error) {
        let pointer = JSONPointer(tokens)
        diagnostics.append(Diagnostic(severity, file: origin.file, location: location(of: pointer, in: origin), pointer: pointer,
                                      rule: rule, message: message, fix: fix))
    }

    /// Where a value of a manifest is, found by reading its file again.
    mutating func location(of pointer: JSONPointer, in origin: ManifestOrigin) -> SourceLocation {
        if parsedForLocations[origin.file] == nil {
            let documents = (try? YAMLLoader.load(bytesByPath[origin.file] ?? [], file: origin.file, limits: limits).get()) ?? []
            parsedForLocations[origin.file] = documents.filter { $0.value != .null }
        }
        let documents = parsedForLocations[origin.file]!
        guard documents.indices.contains(origin.document) else { return .start }
        return documents[origin.document].location(of: pointer)
    }

    func report() -> ValidationReport {
        let sorted = diagnostics.sorted()
        var sources: [String: [UInt8]] = [:]
        for diagnostic in sorted where sources[diagnostic.file] == nil {
            sources[diagnostic.file] = bytesByPath[diagnostic.file]
        }
        return ValidationReport(marketplace: marketplace, diagnostics: sorted, fileCount: fileCount,
                                manifestCount: manifestCount, sources: sources)
    }
}

/// `additionalProperties` → `additional-properties`; rule ids are kebab-case.
func kebab(_ keyword: String) -> String {
    if keyword == "additionalProperties" { return "unknown-field" }
    var result = ""
    for character in keyword {
        if character.isUppercase {
            result += "-" + character.lowercased()
        } else {
            result.append(character)
        }
    }
    return result
}
