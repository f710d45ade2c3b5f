import Logging
import NIOPosix
import ServiceLifecycle
import SetuHits
import SetuUsage

/// Keeps the hit directory's hourly rollups (`<hits>/rollups`) up to date: at start, then
/// half a minute after each hour ends, once the hour's hits are written. `setu usage` reads
/// long ranges from them; what they do not hold yet it reads from the hit files.
struct RollupService: Service {
    let hitDirectory: String
    let logger: Logger
    /// How long after the hour the update runs: hits reach the file within a second, and
    /// a request still in flight at the hour is rolled up with the next one.
    static let delayAfterHour: Int64 = 30_000

    func run() async throws {
        var failing = false
        while true {
            let now = HitLog.nowMilliseconds()
            let hour = now / 3_600_000 * 3_600_000
            do {
                let directory = hitDirectory
                let summary = try await NIOThreadPool.singleton.runIfActive {
                    try HitRollups.update(hitDirectory: directory, before: hour)
                }
                if summary.hits > 0 { logger.info("rolled up \(summary.hits) hits into \(summary.rows) hourly rows") }
                if failing { logger.notice("hourly rollups are written again to \(HitRollups.folder(of: hitDirectory))") }
                failing = false
            } catch {
                if !failing { logger.error("cannot update the hourly rollups: \(error); setu usage reads those hours from the hit files") }
                failing = true
            }
            let wait = hour + 3_600_000 + Self.delayAfterHour - HitLog.nowMilliseconds()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(max(wait, 1000))) }
            } catch {
                return
            }
        }
    }
}
