import ArgumentParser
import SetuManifest

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check every manifest of a marketplace: YAML, schemas and the rules between manifests.",
        discussion: """
            Every problem is reported in one run, sorted by file and line, as
            file:line:col: error[rule-id]: /json/pointer message, with the offending line and a fix.

            Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage or I/O error.

            Examples:
              setu validate --repo . --rev main
              setu validate --worktree                      # before committing
              setu validate --rev HEAD --format github      # in a CI job
            """)

    @OptionGroup var source: MarketplaceOptions

    @Option(name: .long, help: ArgumentHelp("Output format: text, json or github.", valueName: "format"))
    var format: DiagnosticFormatter.Format = .text

    func run() throws {
        let (files, label) = try source.load()
        let report = MarketplaceValidator(today: ManifestDate.today()).validate(files)
        write(DiagnosticFormatter(format: format).render(report, revision: label))
        if !report.isValid { throw ExitCode(1) }
    }
}

extension DiagnosticFormatter.Format: ExpressibleByArgument {}
