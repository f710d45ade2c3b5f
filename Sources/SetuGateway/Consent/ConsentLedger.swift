import Foundation
import SetuFormats
import SetuHits
import SetuManifest
import SetuStorage
import Synchronization

/// What the gateway remembers of consents used: each transaction id (or token id) seen
/// from a client in the last 24 hours, which may not come again, and how often each consent
/// was used in its `permission.frequency` period.
///
/// Kept in the state directory as a journal of JSON lines, so a restart neither reopens
/// replays nor resets counts: each `save` appends what changed since the last, and the file
/// is rewritten with only what is live once it holds twice that. Writing the whole ledger
/// every second would cost time in proportion to a day's transactions.
///
/// One lock, taken only on calls that present a consent.
public final class ConsentLedger: Sendable {
    /// How long a transaction id is remembered.
    static let replayWindowMilliseconds: Int64 = 86_400_000

    private struct Use {
        var period: Int64
        var used: Int64
        /// When the period ends: the entry is dropped after it.
        var ends: Int64
    }

    /// A change, as the journal records it.
    private enum Entry {
        case seen(key: String, at: Int64)
        case use(key: String, Use)
    }

    private struct State {
        /// `client \n transaction` → when it was first seen (ms since 1970).
        var seen: [String: Int64] = [:]
        /// `consumer \n consent id` → the frequency period and the uses counted in it.
        var uses: [String: Use] = [:]
        /// Changes not yet written.
        var journal: [Entry] = []
        /// Lines in the file now.
        var lines = 0
        var lastPruned: Int64 = 0
    }

    /// Where the ledger is kept between runs; nil keeps it in memory only.
    public let file: String?
    private let state = Mutex(State())

    /// - Throws: `GatewayError` when the file exists but a line of it is not the ledger's.
    public init(file: String?) throws {
        self.file = file
        guard let file, FileManager.default.fileExists(atPath: file) else { return }
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw GatewayError(message: "cannot read the consent ledger \(file): \(error)")
        }
        var loaded = State()
        for (index, line) in text.split(separator: "\n").enumerated() {
            guard let value = try? JSONValue(json: Data(line.utf8)), let key = value["key"]?.stringValue else {
                // A crash can cut the last line short; anything else is not a ledger.
                if index == text.split(separator: "\n").count - 1 && !text.hasSuffix("\n") { continue }
                throw GatewayError(
                    message:
                        "line \(index + 1) of \(file) is not a consent ledger entry; move the file aside to start it afresh (replays of the last 24 h are then accepted once more)"
                )
            }
            func number(_ name: String) -> Int64? { value[name]?.numberValue.flatMap { Int64(exactly: $0) } }
            if let at = number("at") {
                loaded.seen[key] = at
            } else if let period = number("period"), let used = number("used"), let ends = number("ends") {
                loaded.uses[key] = Use(period: period, used: used, ends: ends)
            }
            loaded.lines += 1
        }
        state.withLock { $0 = loaded }
    }

    /// Why a use was refused.
    enum Refusal: Error {
        case replayed(firstSeen: Int64)
        case exhausted(repeats: Int64, retryAfterSeconds: Int64)
    }

    /// Records one use of a consent for one transaction, unless the transaction was seen
    /// before from the same client or the consent's uses for its period are spent.
    func use(
        client: String, consumer: String, transaction: String, consent: VerifiedConsent,
        nowMilliseconds now: Int64
    ) throws(Refusal) {
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
                if file != nil { state.journal.append(.use(key: useKey, use)) }
            }
            state.seen[seenKey] = now
            if file != nil { state.journal.append(.seen(key: seenKey, at: now)) }
            return nil
        }
        if let outcome { throw outcome }
    }

    /// The frequency period containing `now`, and when it ends.
    static func period(of frequency: VerifiedConsent.Frequency, at now: Int64) -> (Int64, Int64) {
        let span = max(frequency.value, 1)
        switch frequency.unit {
        case "minute", "hour", "day", "week":
            let unit: Int64 =
                switch frequency.unit {
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

    /// Appends what changed since the last call to the file; once a minute forgets what no
    /// longer limits anyone, and rewrites the file when it holds twice what is live.
    /// - Throws: the file system's error; the changes are then written by a later call.
    public func save(nowMilliseconds now: Int64 = HitLog.nowMilliseconds()) throws {
        let (journal, live, compact) = state.withLock { state -> ([Entry], [Entry]?, Bool) in
            if now - state.lastPruned >= 60_000 {
                state.lastPruned = now
                state.seen = state.seen.filter { now - $0.value < Self.replayWindowMilliseconds }
                state.uses = state.uses.filter { $0.value.ends > now }
            }
            let journal = state.journal
            state.journal.removeAll(keepingCapacity: true)
            let liveCount = state.seen.count + state.uses.count
            let compact = state.lines + journal.count > 2 * liveCount + 1024
            let live =
                compact
                ? state.seen.map { Entry.seen(key: $0.key, at: $0.value) } + state.uses.map { Entry.use(key: $0.key, $0.value) }
                : nil
            return (journal, live, compact)
        }
        guard let file, !journal.isEmpty || compact else { return }
        do {
            if let live {
                try AtomicFile.replace(file, with: [UInt8](Self.encode(live)))
                state.withLock { $0.lines = live.count }
            } else {
                let descriptor = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else { throw GatewayError(message: "cannot open \(file): \(String(cString: strerror(errno)))") }
                defer { close(descriptor) }
                let data = Self.encode(journal)
                let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard written == data.count else {
                    throw GatewayError(message: "cannot append to \(file): \(String(cString: strerror(errno)))")
                }
                state.withLock { $0.lines += journal.count }
            }
        } catch {
            // Kept for the next call, before anything newer.
            state.withLock { $0.journal.insert(contentsOf: journal, at: 0) }
            throw error
        }
    }

    private static func encode(_ entries: [Entry]) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 96)
        for entry in entries {
            switch entry {
            case .seen(let key, let at):
                bytes.append(contentsOf: "{\"key\":".utf8)
                JSONString.append(key, to: &bytes)
                bytes.append(contentsOf: ",\"at\":\(at)}\n".utf8)
            case .use(let key, let use):
                bytes.append(contentsOf: "{\"key\":".utf8)
                JSONString.append(key, to: &bytes)
                bytes.append(contentsOf: ",\"period\":\(use.period),\"used\":\(use.used),\"ends\":\(use.ends)}\n".utf8)
            }
        }
        return Data(bytes)
    }
}
