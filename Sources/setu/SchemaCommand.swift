import ArgumentParser
import Foundation
import SetuManifest

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print or export the JSON Schemas (draft 2020-12) of every manifest kind.",
        discussion: """
            Editors check and complete manifests with them: export the schemas into the
            marketplace repository, then start each manifest with a line such as
              # yaml-language-server: $schema=../../schemas/api.schema.json

            Examples:
              setu schema                      # list the kinds and their schema files
              setu schema API                  # print the API schema
              setu schema --out schemas        # write every schema file into ./schemas
            """)

    @Argument(help: ArgumentHelp("A kind to print: \(ManifestKind.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "kind"))
    var kind: String?

    @Option(name: .long, help: ArgumentHelp("Write every schema file into this folder (created if missing).", valueName: "dir"))
    var out: String?

    func run() throws {
        if let out {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for (name, bytes) in ManifestSchemas.files.sorted(by: { $0.key < $1.key }) {
                    try Data(bytes).write(to: URL(fileURLWithPath: out).appendingPathComponent(name))
                }
            } catch {
                throw CLIFailure("cannot write schemas to \(out): \(error.localizedDescription)")
            }
            print("wrote \(ManifestSchemas.files.count) schemas to \(out)")
            return
        }
        guard let kind else {
            for kind in ManifestKind.allCases {
                print("\(kind.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)) \(kind.schemaFile)")
            }
            print("\("(shared)".padding(toLength: 16, withPad: " ", startingAt: 0)) \(ManifestSchemas.commonFile)")
            return
        }
        guard let match = ManifestKind.allCases.first(where: { $0.rawValue.lowercased() == kind.lowercased() || $0.schemaFile == kind }) else {
            throw ValidationError("'\(kind)' is not a kind; use one of: \(ManifestKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        write(String(decoding: ManifestSchemas.files[match.schemaFile]!, as: UTF8.self))
    }
}
