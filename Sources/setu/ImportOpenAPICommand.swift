import ArgumentParser
import Foundation
import SetuManifest

struct ImportOpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-openapi",
        abstract: "Write an API manifest from an OpenAPI 3 document.",
        discussion: """
            The title comes from the document's info.title, the summary from info.summary or else
            the first sentence of info.description, the tags from its top-level tags and its
            info's x-apisguru-categories, the version from info.version and the upstream from its
            first server URL; options override each. With --into, the manifest and a copy of the
            document are written into a marketplace repository's catalog/<publisher>/ folder;
            otherwise the manifest is printed.

            Examples:
              setu import-openapi cbse.openapi.yaml --publisher cbse --name class-xii-marksheet
              setu import-openapi pan.openapi.yaml --publisher incometax --plan standard --into .
              setu import-openapi cbse.openapi.yaml --publisher cbse --title "CBSE certificates" --tag education
            """)

    @Argument(help: ArgumentHelp("The OpenAPI 3 document (YAML or JSON).", valueName: "file"))
    var file: String

    @Option(name: .long, help: ArgumentHelp("The publisher that lists the API.", valueName: "publisher"))
    var publisher: String

    @Option(name: .long, help: ArgumentHelp("The API's name (default: from the file name).", valueName: "name"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("The API's title (default: the document's info.title).", valueName: "text"))
    var title: String?

    @Option(name: .long, help: ArgumentHelp("The API's one-sentence summary (default: from the document's info).", valueName: "text"))
    var summary: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A tag; repeat for more (default: the document's tags and categories).", valueName: "tag"))
    var tag: [String] = []

    @Option(name: .long, help: ArgumentHelp("The gateway path prefix (default: /<publisher>/<name>).", valueName: "path"))
    var basePath: String?

    @Option(name: .long, help: ArgumentHelp("The upstream URL (default: the document's first server).", valueName: "url"))
    var upstream: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A plan the API offers; repeat for more (default: standard).", valueName: "plan"))
    var plan: [String] = []

    @Option(name: .long, help: ArgumentHelp("A marketplace repository to write catalog/<publisher>/<name>.yaml and the document into.", valueName: "repo"))
    var into: String?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIFailure("cannot read '\(file)'")
        }
        let bytes = [UInt8](data)
        let documents: [YAMLDocument]
        switch YAMLLoader.load(bytes, file: file) {
        case .failure(let diagnostic):
            throw CLIFailure(DiagnosticFormatter.headline(diagnostic))
        case .success(let loaded):
            documents = loaded
        }
        guard let value = documents.first?.value else { throw CLIFailure("'\(file)' is empty") }
        var document: OpenAPIDocument
        do {
            document = try OpenAPIDocument(value)
        } catch {
            let location = documents[0].location(of: error.pointer)
            throw CLIFailure("\(file):\(location): \(error.pointer.tokens.isEmpty ? "the document" : error.pointer.description) \(error.message)")
        }
        let fileName = URL(fileURLWithPath: file).lastPathComponent
        let stem = fileName.replacingOccurrences(of: ".openapi", with: "").split(separator: ".").first.map(String.init) ?? "api"
        let apiName = name ?? slug(stem)
        guard ManifestName.isValid(apiName) else {
            throw ValidationError("the API name '\(apiName)' must be 1-63 lowercase letters, digits or '-'; pass --name")
        }
        guard ManifestName.isValid(publisher) else {
            throw ValidationError("--publisher must be 1-63 lowercase letters, digits or '-'")
        }
        let upstreamURL = upstream ?? document.servers.first { $0.hasPrefix("https://") || $0.hasPrefix("http://") }
        guard let upstreamURL else {
            throw CLIFailure("\(file) names no server URL to use as the upstream; pass --upstream https://…")
        }
        let extensionPart = fileName.lowercased().hasSuffix(".json") ? "json" : "yaml"
        let documentName = "\(apiName).openapi.\(extensionPart)"
        if let title { document.title = title }
        if let summary { document.summary = summary }
        if !tag.isEmpty { document.tags = tag }
        let manifest = Self.manifest(
            document: document, name: apiName, publisher: publisher,
            basePath: basePath ?? "/\(publisher)/\(apiName)", upstream: upstreamURL,
            plans: plan.isEmpty ? ["standard"] : plan, openapi: documentName)
        guard let into else {
            write("# Copy \(fileName) beside this file as \(documentName).\n" + manifest)
            return
        }
        let folder = URL(fileURLWithPath: into).appendingPathComponent("catalog").appendingPathComponent(publisher)
        let target = folder.appendingPathComponent("\(apiName).yaml")
        if FileManager.default.fileExists(atPath: target.path) {
            throw CLIFailure("\(target.path) already exists; pass another --name or remove it")
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(manifest.utf8).write(to: target)
            try data.write(to: folder.appendingPathComponent(documentName))
        } catch {
            throw CLIFailure("cannot write into \(folder.path): \(error.localizedDescription)")
        }
        print("wrote catalog/\(publisher)/\(apiName).yaml and catalog/\(publisher)/\(documentName)")
        print("(\(document.operations.count) operations); check it with: setu validate --repo \(into) --worktree")
    }

    static func manifest(
        document: OpenAPIDocument, name: String, publisher: String, basePath: String,
        upstream: String, plans: [String], openapi: String
    ) -> String {
        let summary = firstSentence(document.summary ?? document.description ?? document.title)
        let tags = Array(Set(document.tags.map(slug).filter { !$0.isEmpty })).sorted()
        var text = """
            # yaml-language-server: $schema=../../schemas/api.schema.json
            apiVersion: setu/v1
            kind: API
            metadata:
              name: \(name)
            spec:
              title: \(YAMLText.scalar(String(document.title.prefix(200))))
              summary: \(YAMLText.scalar(summary))
              version: \(YAMLText.scalar(document.apiVersion.isEmpty ? "1.0.0" : document.apiVersion))

            """
        if !tags.isEmpty { text += "  tags: [\(tags.joined(separator: ", "))]\n" }
        text += """
              basePath: \(basePath)
              upstream:
                url: \(YAMLText.scalar(upstream))
                timeout: 10s
              openapi: \(openapi)
              plans: [\(plans.joined(separator: ", "))]

            """
        return text
    }

    static func firstSentence(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        let sentence = flat.range(of: ". ").map { String(flat[..<$0.lowerBound]) + "." } ?? flat
        return String(sentence.prefix(500))
    }
}

/// Lowercase letters, digits and single dashes: a name or tag made from free text.
func slug(_ text: String) -> String {
    var out = ""
    for character in text.lowercased() {
        if character.isASCII && (character.isLetter || character.isNumber) {
            out.append(character)
        } else if !out.isEmpty && out.last != "-" {
            out.append("-")
        }
    }
    while out.last == "-" { out.removeLast() }
    return String(out.prefix(63))
}
