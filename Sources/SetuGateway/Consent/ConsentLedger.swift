import Foundation
import SetuHits
import Synchronization

/// What the gateway remembers of consents used: each transaction id (or token id) seen
/// from a client in the last 24 hours, which may not come again, and how often each consent
/// was used in its `permission.frequency` period. Written to the state directory beside the
/// quotas, so a restart neither reopens replays nor resets counts.
///
/// One lock, taken only on calls that present a consent.
public final class ConsentLedger: Sendable {
    /// How long a transaction id is remembered.
    static let replayWindowMilliseconds: Int64 = 86_400_000

    private struct State: Codable {
        /// `client \n key` → when it was first seen (ms since 1970).
        var seen: [String: Int64] = [:]
        /// `consumer \n consent id` → the frequency period and the uses counted in it.
        var uses: [String: Use] = [:]
    }

    private struct Use: Codable {
        var period: Int64
        var used: Int64
        /// When the period ends: the entry is dropped after it.
        var ends: Int64
    }

    /// Where the ledger is kept between runs; nil keeps it in memory only.
    public let file: String?
    private let state = Mutex(State())
    private let written = Mutex(Data())

    /// - Throws: `GatewayError` when the file exists but is not a consent ledger.
    public init(file: String?) throws {
        self.file = file
        guard let file, FileManager.default.fileExists(atPath: file) else { return }
        do {
            let loaded = try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            state.withLock { $0 = loaded }
        } catch {
            throw GatewayError(message: "cannot read the consent ledger in \(file): \(error); move it aside to start it afresh (replays of the last 24 h are then accepted once more)")
        }
    }

    /// Why a use was refused.
    enum Refusal: Error {
        case replayed(firstSeen: Int64)
        case exhausted(repeats: Int64, retryAfterSeconds: Int64)
    }

    /// Records one use of a consent for one transaction, unless the transaction was seen
    /// before from the same client or the consent's uses for its period are spent.
    func use(client: String, consumer: String, transaction: String, consent: VerifiedConsent,
             nowMilliseconds now: Int64) throws(Refusal) {
        let seenKey = client + "\n" + transaction
        let useKey = consumer + "\n" + consent.consentId
        let period = consent.frequency.map { Self.period(of: $0, at: now) }
        let outcome: Refusal? = state.withLock { state in
            if let first = state.seen[seenKey], now - first < Self.replayWindowMilliseconds {
                return .replayed(firstSeen: first)
            }
            if let frequency = consent.frequency, let (index, ends) = period {
                var use = state.uses[useKey] ?? Use(period: index, used: 0, ends: ends)
                if use.period != index { use = Use(period: index, used: 0, ends: ends) }
                guard use.used < frequency.repeats else {
                    return .exhausted(repeats: frequency.repeats, retryAfterSeconds: max(1, (ends - now + 999) / 1000))
                }
                use.used += 1
                state.uses[useKey] = use
            }
            state.seen[seenKey] = now
            return nil
        }
        if let outcome { throw outcome }
    }

    /// The frequency period containing `now`, and when it ends.
    static func period(of frequency: VerifiedConsent.Frequency, at now: Int64) -> (Int64, Int64) {
        let span = max(frequency.value, 1)
        switch frequency.unit {
        case "minute", "hour", "day", "week":
            let unit: Int64 = switch frequency.unit {
            case "minute": 60_000
            case "hour": 3_600_000
            case "day": 86_400_000
            default: 604_800_000
            }
            let length = unit * span
            let index = now / length
            return (index, (index + 1) * length)
        default:
            // Months (and years, as twelve of them), counted from January 1970.
            let months = frequency.unit == "year" ? 12 * span : span
            let (year, month, _) = Timestamp.civil(daysSinceEpoch: now / 86_400_000)
            let index = ((year - 1970) * 12 + month - 1) / months
            let next = (index + 1) * months
            return (index, Timestamp.daysSinceEpoch(year: 1970 + next / 12, month: next % 12 + 1, day: 1) * 86_400_000)
        }
    }

    /// Forgets what no longer limits anyone, and writes the ledger when it changed.
    /// - Throws: the file system's error.
    public func save(nowMilliseconds now: Int64 = HitLog.nowMilliseconds()) throws {
        let snapshot = state.withLock { state in
            state.seen = state.seen.filter { now - $0.value < Self.replayWindowMilliseconds }
            state.uses = state.uses.filter { $0.value.ends > now }
            return state
        }
        guard let file else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(snapshot)
        guard written.withLock({ $0 != data }) else { return }
        let temporary = file + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, file) == 0 else {
            throw GatewayError(message: "cannot replace \(file): \(String(cString: strerror(errno)))")
        }
        written.withLock { $0 = data }
    }
}
