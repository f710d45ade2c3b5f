import ArgumentParser
import Foundation
import SetuEntitlements
import SetuGit
import SetuManifest
import SetuPortal
import SetuTrust

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

/// What the catalog shows: the marketplace in force at a revision (history replayed from
/// the trust root, so an unauthorized or invalid change is not shown as if it were), or,
/// with `--worktree`, the files as written.
struct BrowsedMarketplace {
    var marketplace: Marketplace
    /// The effective state, when history was replayed.
    var state: EffectiveState?
    /// What was read: `HEAD (1a2b3c4), in force` or `work tree, as written`.
    var label: String

    init(_ source: MarketplaceOptions, trust: TrustOptions) throws {
        guard !source.worktree else {
            let (files, label) = try source.load()
            let report = MarketplaceValidator().validate(files)
            if !report.isValid {
                FileHandle.standardError.write(Data("warning: the marketplace at \(label) has \(report.errorCount) errors; `setu validate` lists them\n".utf8))
            }
            marketplace = report.marketplace
            self.label = label + ", as written"
            return
        }
        let repository = try Repository(path: source.repo)
        let revision = source.rev ?? "HEAD"
        let head = try repository.resolveCommit(revision)
        let outcome = try TrustEngine.replay(repository, head: head, trustRoot: trust.trustRootID(in: repository), stateDirectory: trust.state)
        let report = MarketplaceValidator().validate(outcome.state.sourceFiles)
        // A file in force with an error of its own (an API whose plan was withdrawn from
        // under a subscription, say) is left out, as the gateway leaves it out.
        let broken = Set(report.diagnostics.filter { $0.severity == .error }.map(\.file))
        marketplace = report.marketplace
        marketplace.apis = marketplace.apis.filter { !broken.contains($0.value.origin.file) }
        state = outcome.state
        label = "\(revision) (\(head.short)), in force"
    }

    /// The changes to the catalog that are not in force, and why.
    var waiting: [RefusedChange] {
        (state.map { Array($0.refused.values) } ?? []).filter { $0.path.hasPrefix("catalog/") }.sorted { $0.path < $1.path }
    }
}

struct CatalogList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the APIs in force, optionally filtered by text, publisher, type and tag.",
        discussion: """
            The catalog is what is in force: the branch's history is replayed from the trust root, so
            a change made by someone who may not make it, or one that is invalid, is not listed as
            if it were. --pending lists those changes too, with why they are not in force.

            Examples:
              setu catalog
              setu catalog --search marksheet --publisher cbse
              setu catalog --type service --tag verification --format json
              setu catalog --pending
            """)

    @OptionGroup var source: MarketplaceOptions

    @OptionGroup var trust: TrustOptions

    @Option(name: .long, help: ArgumentHelp("Only APIs whose id, title, summary, publisher or tags contain this text.", valueName: "text"))
    var search: String?

    @Option(name: .long, help: ArgumentHelp("Only APIs of this publisher type: document, service or listing.", valueName: "type"))
    var type: Publisher.Category?

    @Option(name: .long, help: ArgumentHelp("Only this publisher's APIs (its name, as in catalog/<name>/).", valueName: "name"))
    var publisher: String?

    @Option(name: .long, help: ArgumentHelp("Only APIs with this tag.", valueName: "tag"))
    var tag: String?

    @Flag(name: .long, help: "Also list the catalog changes not in force: waiting, unauthorized or invalid, and why.")
    var pending = false

    @Option(name: .long, help: ArgumentHelp("Output format: text or json.", valueName: "format"))
    var format: ReportFormat = .text

    func validate() throws {
        if pending, source.worktree {
            throw ValidationError("--pending needs the history, which --worktree does not read")
        }
    }

    func run() throws {
        let browsed = try BrowsedMarketplace(source, trust: trust)
        let entries = CatalogEntry.list(browsed.marketplace, filter: .init(search: search, type: type, publisher: publisher, tag: tag))
        let waiting =
            pending
            ? browsed.waiting.filter { change in
                publisher.map { change.path.hasPrefix("catalog/\($0)/") } ?? true
            } : []
        switch format {
        case .json:
            struct Document: Encodable {
                var apis: [CatalogEntry]
                var pending: [RefusedChange]
            }
            write(pending ? try prettyJSON(Document(apis: entries, pending: waiting)) : String(decoding: CatalogEntry.json(entries), as: UTF8.self))
        case .text:
            if entries.isEmpty {
                print("no APIs in force match (\(browsed.label))")
            } else {
                let rows =
                    [["API", "TYPE", "TITLE", "BASE PATH", "PLANS", "TAGS"]]
                    + entries.map {
                        [$0.id, $0.type, $0.title, $0.basePath ?? "(listing)", $0.plans.joined(separator: ","), $0.tags.joined(separator: ",")]
                    }
                write(table(rows))
                print("\n\(entries.count) \(entries.count == 1 ? "API" : "APIs") at \(browsed.label); `setu catalog show <api>` shows one with its operations")
            }
            guard pending else { return }
            print("\nchanges not in force")
            if waiting.isEmpty { print("  (none)") }
            for change in waiting {
                print("  \(change.path)  \(change.reason.rawValue) (\(change.commit.prefix(7)) by \(change.by))\n    \(change.message)")
                if !change.needs.isEmpty { print("    needs one of: \(change.needs.joined(separator: ", "))") }
            }
        }
    }
}

/// `--format` of the commands that print a report: for people or for programs.
enum ReportFormat: String, ExpressibleByArgument {
    case text, json
}

extension Publisher.Category: ExpressibleByArgument {}

struct CatalogShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one API: its publisher, plans, operations and the Subscription to commit for it.",
        discussion: """
            Example:
              setu catalog show cbse/class-xii-marksheet
            """)

    @OptionGroup var source: MarketplaceOptions

    @OptionGroup var trust: TrustOptions

    @Argument(help: ArgumentHelp("The API id: <publisher>/<api>.", valueName: "api"))
    var api: String

    func run() throws {
        let marketplace = try BrowsedMarketplace(source, trust: trust).marketplace
        guard let api = marketplace.apis[api] else {
            let known = marketplace.apis.keys.sorted()
            let near = known.filter { $0.contains(self.api) || self.api.contains($0.split(separator: "/").last.map(String.init) ?? "") }
            throw CLIFailure(
                "no API '\(self.api)' in the catalog" + (near.isEmpty ? "; `setu catalog` lists them" : "; did you mean \(near.joined(separator: ", "))?"))
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
        out += "\n" + CatalogEntry.subscribing(to: api, in: marketplace)
        write(out)
    }
}

/// How many columns a cell takes. Counting characters walks grapheme clusters;
/// for the usual ASCII cell its byte count is the same and far quicker.
func columnWidth(_ text: String) -> Int {
    let isASCII =
        text.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 < 0x80 } }
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
