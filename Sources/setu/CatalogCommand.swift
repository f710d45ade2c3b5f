import ArgumentParser
import Foundation
import SetuManifest

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Browse the APIs a marketplace lists.",
        discussion: """
        Examples:
          setu catalog --search marksheet
          setu catalog show cbse/class-xii-marksheet
        """,
        subcommands: [CatalogList.self, CatalogShow.self],
        defaultSubcommand: CatalogList.self)
}

/// Loads and validates a marketplace for browsing, warning (not failing) when it has errors.
func browsableMarketplace(_ source: MarketplaceOptions) throws -> Marketplace {
    let (files, label) = try source.load()
    let report = MarketplaceValidator().validate(files)
    if !report.isValid {
        FileHandle.standardError.write(Data("warning: the marketplace at \(label) has \(report.errorCount) errors; `setu validate` lists them\n".utf8))
    }
    return report.marketplace
}

struct CatalogList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List APIs, optionally filtered by text and publisher type.",
        discussion: """
        Examples:
          setu catalog
          setu catalog --search marksheet
          setu catalog --type service --format json
        """)

    @OptionGroup var source: MarketplaceOptions

    @Option(name: .long, help: ArgumentHelp("Only APIs whose id, title, summary, publisher or tags contain this text.", valueName: "text"))
    var search: String?

    @Option(name: .long, help: ArgumentHelp("Only APIs of this publisher type: document, service or listing.", valueName: "type"))
    var type: Publisher.Category?

    @Option(name: .long, help: ArgumentHelp("Output format: text or json.", valueName: "format"))
    var format: ReportFormat = .text

    func run() throws {
        let marketplace = try browsableMarketplace(source)
        let entries = CatalogEntry.list(marketplace, search: search, type: type)
        switch format {
        case .json:
            write(try prettyJSON(entries))
        case .text:
            if entries.isEmpty {
                print("no APIs match")
                return
            }
            let rows = [["API", "TYPE", "TITLE", "BASE PATH", "PLANS", "TAGS"]] + entries.map {
                [$0.id, $0.type, $0.title, $0.basePath ?? "(listing)", $0.plans.joined(separator: ","), $0.tags.joined(separator: ",")]
            }
            write(table(rows))
            print("\n\(entries.count) \(entries.count == 1 ? "API" : "APIs"); `setu catalog show <api>` shows one with its operations")
        }
    }
}

/// `--format` of the commands that print a report: for people or for programs.
enum ReportFormat: String, ExpressibleByArgument {
    case text, json
}

extension Publisher.Category: ExpressibleByArgument {}

/// One API as the catalog lists it.
struct CatalogEntry: Encodable {
    var id: String
    var publisher: String
    var publisherName: String
    var type: String
    var title: String
    var summary: String
    var version: String
    var basePath: String?
    var plans: [String]
    var tags: [String]
    var consent: String
    var operations: Int

    static func list(_ marketplace: Marketplace, search: String?, type: Publisher.Category?) -> [CatalogEntry] {
        let needle = search?.lowercased()
        return marketplace.apis.values.sorted { $0.id < $1.id }.compactMap { api in
            let publisher = marketplace.publishers[api.publisher]
            let category = publisher?.category ?? .service
            if let type, category != type { return nil }
            if let needle {
                let haystack = ([api.id, api.title, api.summary, publisher?.displayName ?? ""] + api.tags).joined(separator: " ").lowercased()
                if !haystack.contains(needle) { return nil }
            }
            return CatalogEntry(id: api.id, publisher: api.publisher, publisherName: publisher?.displayName ?? api.publisher,
                                type: category.rawValue, title: api.title, summary: api.summary, version: api.version,
                                basePath: api.basePath, plans: api.plans, tags: api.tags,
                                consent: api.consent(for: category).rawValue, operations: api.operations.count)
        }
    }
}

struct CatalogShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one API: its publisher, plans, operations and the Subscription to commit for it.",
        discussion: """
        Example:
          setu catalog show cbse/class-xii-marksheet
        """)

    @OptionGroup var source: MarketplaceOptions

    @Argument(help: ArgumentHelp("The API id: <publisher>/<api>.", valueName: "api"))
    var api: String

    func run() throws {
        let marketplace = try browsableMarketplace(source)
        guard let api = marketplace.apis[api] else {
            let known = marketplace.apis.keys.sorted()
            let near = known.filter { $0.contains(self.api) || self.api.contains($0.split(separator: "/").last.map(String.init) ?? "") }
            throw CLIFailure("no API '\(self.api)' in the catalog" + (near.isEmpty ? "; `setu catalog` lists them" : "; did you mean \(near.joined(separator: ", "))?"))
        }
        let publisher = marketplace.publishers[api.publisher]
        let category = publisher?.category ?? .service
        var out = "\(api.title)  (\(api.id), version \(api.version))\n"
        out += "\(api.summary)\n\n"
        if let description = api.description { out += description + "\n\n" }
        out += "publisher   \(publisher?.displayName ?? api.publisher) (\(category.rawValue))\n"
        if let listing = api.listingURL {
            out += "listing     \(listing)\n"
            out += "            listed for information only: the gateway does not serve it and it cannot be subscribed to\n"
            write(out)
            return
        }
        out += "base path   \(api.basePath ?? "-")\n"
        out += "consent     \(api.consent(for: category).rawValue)\n"
        if !api.tags.isEmpty { out += "tags        \(api.tags.joined(separator: ", "))\n" }
        out += "plans\n"
        for name in api.plans {
            guard let plan = marketplace.plans[name] else {
                out += "  \(name)\n"
                continue
            }
            var limits = "\(plan.requests) requests per \(plan.per.rawValue)"
            if let quota = plan.quota { limits += ", \(quota.requests) per \(quota.per.rawValue)" }
            out += "  \(name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(plan.displayName): \(limits)\n"
        }
        if api.operations.isEmpty {
            out += "operations  (no OpenAPI document)\n"
        } else {
            out += "operations\n"
            let rows = api.operations.map { ["  " + $0.method, (api.basePath ?? "") + $0.path, $0.operationId ?? "-", $0.summary ?? ""] }
            out += table(rows)
        }
        let approvers = publisher?.approvers.map(\.email).joined(separator: ", ") ?? ""
        out += """

        To subscribe, commit this file as subscriptions/<your-consumer>/\(api.publisher)-\(api.name).yaml on a branch,
        and ask an approver of \(api.publisher)\(approvers.isEmpty ? "" : " (\(approvers))") to merge it:

        # yaml-language-server: $schema=../../schemas/subscription.schema.json
        apiVersion: setu/v1
        kind: Subscription
        metadata:
          name: \(api.publisher)-\(api.name)
        spec:
          api: \(api.id)
          plan: \(api.plans.first ?? "standard")
        """
        if category == .document {
            out += "\n  purpose: \(YAMLText.scalar("Why you need this API, for the publisher's approvers."))"
        }
        if let first = api.operations.first?.operationId {
            out += "\n  # operations: [\(first)]   # optional: only these operations"
        }
        write(out + "\n")
    }
}

/// How many columns a cell takes. Counting characters walks grapheme clusters;
/// for the usual ASCII cell its byte count is the same and far quicker.
func columnWidth(_ text: String) -> Int {
    let isASCII = text.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 < 0x80 } }
        ?? text.utf8.allSatisfy { $0 < 0x80 }
    return isASCII ? text.utf8.count : text.count
}

/// Left-aligned columns separated by two spaces.
func table(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    let cellWidths = rows.map { $0.map(columnWidth) }
    var widths = [Int](repeating: 0, count: columns)
    var size = 0
    for row in cellWidths {
        for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell) }
    }
    for row in rows {
        size += row.count * 2 + 1
        for (index, _) in row.enumerated() { size += widths[index] + 4 }
    }
    // Built as bytes: a status report can run to tens of thousands of rows.
    var out: [UInt8] = []
    out.reserveCapacity(size)
    for (row, rowWidths) in zip(rows, cellWidths) {
        for (index, cell) in row.enumerated() {
            out.append(contentsOf: cell.utf8)
            if index < row.count - 1 { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: widths[index] - rowWidths[index] + 2)) }
        }
        out.append(UInt8(ascii: "\n"))
    }
    return String(decoding: out, as: UTF8.self)
}
