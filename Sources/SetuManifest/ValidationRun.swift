import Dispatch
import Foundation
import SetuConcurrency

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
            diagnostics.append(
                Diagnostic(
                    file: ".", rule: .repoTooLarge,
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
                diagnostics.append(
                    Diagnostic(
                        file: file.path, rule: .fileSymlink,
                        message: "symbolic links are not allowed in a marketplace",
                        fix: "replace the link with the file it points to"))
                continue
            case .submodule:
                unreadable.insert(file.path)
                diagnostics.append(
                    Diagnostic(
                        file: file.path, rule: .fileSubmodule,
                        message: "submodules are not allowed in a marketplace",
                        fix: "remove the submodule (git rm) and commit its files directly"))
                continue
            case .tooLarge(let size):
                unreadable.insert(file.path)
                if role != .ignored {
                    diagnostics.append(
                        Diagnostic(
                            file: file.path, rule: .fileTooLarge,
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
                diagnostics.append(
                    Diagnostic(
                        file: file.path, rule: .fileLocation,
                        message: "this file is not where any manifest belongs", fix: fix))
                continue
            case .openapi:
                openapiFiles.insert(file.path)
                bytesByPath[file.path] = bytes
                continue
            default:
                totalBytes += bytes.count
                if totalBytes > limits.maxRepositoryBytes {
                    diagnostics.append(
                        Diagnostic(
                            file: file.path, rule: .repoTooLarge,
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
    static func load(
        path: String, bytes: [UInt8], role: FileRole, limits: LoadLimits,
        schemas: ManifestSchemas
    ) -> (file: LoadedFile, documents: [JSONValue]) {
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
    static func examine(
        _ documents: [JSONValue], path: String, role: FileRole, schemas: ManifestSchemas?,
        locate: (_ document: Int, _ pointer: JSONPointer?) -> SourceLocation
    ) -> LoadedFile {
        var loaded = LoadedFile(path: path)
        loaded.documentCount = documents.count
        if documents.isEmpty {
            loaded.diagnostics.append(
                Diagnostic(
                    file: path, rule: .manifestEmpty, message: "the file holds no manifest",
                    fix: "add a manifest, or delete the file"))
            return loaded
        }
        if role.singleDocument, documents.count > 1 {
            loaded.diagnostics.append(
                Diagnostic(
                    file: path, location: locate(1, nil), rule: .manifestSingleDocument,
                    message: "\(path.split(separator: "/").last!) holds exactly one manifest, but this file has \(documents.count)",
                    fix: "move the other documents to files of their own"))
        }
        let allowed = role.allowedKinds
        for (index, document) in documents.enumerated() {
            let origin = ManifestOrigin(file: path, document: index)
            func report(_ pointer: JSONPointer, _ rule: RuleID, _ message: String, _ fix: String?) {
                loaded.diagnostics.append(
                    Diagnostic(
                        file: path, location: locate(index, pointer), pointer: pointer,
                        rule: rule, message: message, fix: fix))
            }
            guard case .object = document else {
                report(JSONPointer(), .schemaType, "must be a mapping with apiVersion, kind, metadata and spec, not \(render(document))", nil)
                continue
            }
            let expected = allowed.map(\.rawValue).joined(separator: ", ")
            guard let kindName = document["kind"]?.stringValue else {
                report(JSONPointer(), .manifestKind, "is missing 'kind'", "add 'kind: \(allowed.first?.rawValue ?? "")'; this file may hold: \(expected)")
                continue
            }
            guard let kind = ManifestKind(rawValue: kindName) else {
                let suggestion = closest(to: kindName, in: ManifestKind.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                report(JSONPointer(["kind"]), .manifestKind, "'\(kindName)' is not a kind of manifest\(suggestion)", "this file may hold: \(expected)")
                continue
            }
            guard allowed.contains(kind) else {
                report(JSONPointer(["kind"]), .manifestLocation, "a \(kind.rawValue) does not belong in \(path)", Self.home(of: kind))
                continue
            }
            for violation in schemas?.schema(for: kind).violations(of: document) ?? [] {
                report(
                    violation.pointer, violation.rule.map(RuleID.init(rawValue:)) ?? .schema(violation.keyword),
                    violation.message, violation.fix)
            }
            guard let name = document["metadata"]?["name"]?.stringValue, !name.isEmpty else { continue }
            loaded.manifests.append(
                LoadedManifest(
                    kind: kind, name: name, entity: decode(document, kind: kind, name: name, role: role, origin: origin),
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
            return .api(
                ManifestDecoding.api(value, publisher: publisher, name: name, origin: origin),
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
                    report(
                        origin, ["metadata", "name"], .namePath,
                        "is '\(name)', but the folder says '\(folder)'",
                        fix: "rename the folder to \(name), or set metadata.name to \(folder)")
                }
            case .apis(_, let stem), .subscriptions(_, let stem):
                if manifest.documentsInFile == 1, name != stem {
                    report(
                        origin, ["metadata", "name"], .namePath,
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
                report(
                    origin, ["metadata", "name"], .nameUnique,
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
            diagnostics.append(
                Diagnostic(
                    file: "policies/platform.yaml", rule: .platformMissing,
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
            report(
                origin, pointer, .openapiPath, "'\(written)' must be a path relative to this file",
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
                report(
                    origin, pointer, .openapiPath,
                    "'\(written)' leads outside \(folder.joined(separator: "/"))/; an OpenAPI document must stay inside its publisher's folder",
                    fix: "move the document into \(folder.joined(separator: "/"))/ and point at it there")
                return nil
            }
        }
        let path = parts.joined(separator: "/")
        referencedOpenAPI.insert(path)
        guard FileRole.of(path) == .openapi else {
            report(
                origin, pointer, .openapiPath, "'\(written)' must name a file ending in .openapi.yaml or .openapi.json",
                fix: "rename the document, e.g. to \(path.split(separator: "/").last!.split(separator: ".").first!).openapi.yaml")
            return nil
        }
        guard openapiFiles.contains(path) else {
            if !unreadable.contains(path) {
                report(
                    origin, pointer, .openapiMissing, "'\(written)' does not exist (looked for \(path))",
                    fix: "add the OpenAPI document at \(path), or correct the path")
            }
            return nil
        }
        return path
    }

    // MARK: Reporting

    mutating func report(
        _ origin: ManifestOrigin, _ tokens: [String], _ rule: RuleID, _ message: String,
        fix: String? = nil, severity: Diagnostic.Severity = .error
    ) {
        let pointer = JSONPointer(tokens)
        diagnostics.append(
            Diagnostic(
                severity, file: origin.file, location: location(of: pointer, in: origin), pointer: pointer,
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
        return ValidationReport(
            marketplace: marketplace, diagnostics: sorted, fileCount: fileCount,
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
