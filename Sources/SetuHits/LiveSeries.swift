import Histogram
import Synchronization

/// The last hour of hits, minute by minute, for the dashboard's hour view: fed like the alert
/// windows from the batches the hit log writes, so it costs the request path nothing.
/// Longer views are read from the hourly rollups; this one needs minutes, which they do not keep.
public final class LiveSeries: HitObserver, Sendable {
    /// One minute's hits.
    public struct Minute: Sendable {
        /// Milliseconds since 1970 at the minute's start.
        public var start: Int64
        /// Requests by the status's first digit (index 1 to 5).
        public var byClass = [UInt64](repeating: 0, count: 6)
        /// Latency of the requests let through, in microseconds.
        public var latency: Histogram<UInt64>
        /// Refusals by reason (`rate-limited`), and requests by consumer and by API.
        public var denials: [String: UInt64] = [:]
        public var consumers: [String: Counts] = [:]
        public var apis: [String: Counts] = [:]

        init(start: Int64) {
            self.start = start
            latency = LatencyHistogram.make()
        }

        public var requests: UInt64 { byClass.reduce(0, +) }
    }

    /// Requests, refusals and errors of one consumer or API.
    public struct Counts: Sendable, Equatable {
        public var requests: UInt64 = 0
        public var denied: UInt64 = 0
        public var errors: UInt64 = 0

        public init() {}

        mutating func count(_ hit: HitRecord) {
            requests += 1
            if hit.decision.hasPrefix("deny:") { denied += 1 }
            if hit.status >= 500 { errors += 1 }
        }
    }

    private let minutes = Mutex<[Minute?]>(Array(repeating: nil, count: 60))

    public init() {}

    public func observe<Hits: Collection>(_ hits: Hits) where Hits.Element == HitRecord {
        minutes.withLock { minutes in
            for hit in hits {
                let index = hit.timestampMilliseconds / 60_000
                let slot = Int(index % 60)
                if minutes[slot]?.start != index * 60_000 {
                    // A hit older than the minute the slot holds is outside the hour.
                    if let held = minutes[slot], held.start > index * 60_000 { continue }
                    minutes[slot] = Minute(start: index * 60_000)
                }
                minutes[slot]!.byClass[min(max(hit.status / 100, 0), 5)] += 1
                if hit.decision == "allow" { minutes[slot]!.latency.record(UInt64(max(hit.latencyMilliseconds * 1000, 1))) }
                if hit.decision.hasPrefix("deny:") { minutes[slot]!.denials[String(hit.decision.dropFirst(5)), default: 0] += 1 }
                minutes[slot]!.consumers[hit.consumer ?? "-", default: Counts()].count(hit)
                minutes[slot]!.apis[hit.api ?? "-", default: Counts()].count(hit)
            }
        }
    }

    /// The 60 minutes ending with the one holding `now`, oldest first; a minute without hits is empty.
    public func hour(endingAt now: Int64) -> [Minute] {
        let last = now / 60_000
        return minutes.withLock { minutes in
            (last - 59...last).map { index in
                let held = minutes[Int(index % 60)]
                return held?.start == index * 60_000 ? held! : Minute(start: index * 60_000)
            }
        }
    }
}
