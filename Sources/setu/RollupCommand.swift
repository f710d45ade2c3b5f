import ArgumentParser
import Foundation
import SetuUsage

struct RollupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollup",
        abstract: "Bring a hit directory's hourly rollups up to date, so that `setu usage` reads long ranges fast.",
        discussion: """
            `setu serve` rolls up its hit directory each hour, into <state>/hits/rollups. Run this
            for hit directories copied from elsewhere, or after a daemon was stopped for a while.
            It rolls up every complete line of an hour already over, and is safe to run at any
            time, also beside the daemon: updates of one directory take turns.

            Example:
              setu rollup replica-a/hits replica-b/hits
            """)

    @Argument(help: ArgumentHelp("Hit directories (<state>/hits).", valueName: "directory"))
    var directories: [String] = [".setu/hits"]

    func run() throws {
        let hour = Int64((Date().timeIntervalSince1970 * 1000).rounded()) / 3_600_000 * 3_600_000
        for directory in directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLIFailure("\(directory) is not a directory: name a hit directory (<state>/hits)")
            }
            do {
                let summary = try HitRollups.update(hitDirectory: directory, before: hour)
                print("\(directory): rolled up \(summary.hits) hits of \(summary.lines) lines into \(summary.rows) rows")
            } catch let error as UsageError {
                throw CLIFailure(error.message)
            }
        }
    }
}
