import Foundation
import SetuFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The system calls under names the hit file's own methods do not shadow.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}

private func systemClose(_ descriptor: Int32) {
    _ = close(descriptor)
}

private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

/// Where and how the hit log writes.
public struct HitLogConfiguration: Sendable {
    /// The directory of the hit files, `<state>/hits` for `setu serve`.
    public var directory: String
    /// A day's file is continued in a new numbered file once it reaches this size.
    public var maxFileBytes: Int
    /// Files of days older than this many days (today included) are deleted.
    public var retentionDays: Int
    /// Hits waiting for the writer; beyond it, hits are dropped and counted.
    public var queueCapacity: Int
    /// The longest a written hit waits in the process before reaching the file.
    public var flushInterval: Double

    /// - Parameters:
    ///   - directory: created if missing.
    ///   - maxFileBytes: 64 MiB unless given.
    ///   - retentionDays: 30 unless given.
    ///   - queueCapacity: 65,536 hits unless given.
    ///   - flushInterval: one second unless given.
    public init(
        directory: String, maxFileBytes: Int = 64 << 20, retentionDays: Int = 30,
        queueCapacity: Int = 65_536, flushInterval: Double = 1
    ) {
        self.directory = directory
        self.maxFileBytes = maxFileBytes
        self.retentionDays = retentionDays
        self.queueCapacity = queueCapacity
        self.flushInterval = flushInterval
    }
}

/// A failure to open or write the hit log, with the file and the system's reason.
public struct HitLogError: Error, Sendable, CustomStringConvertible {
    /// The file or directory.
    public var path: String
    /// What was being done and why it failed.
    public var message: String

    /// `hit log <path>: <message>`.
    public var description: String { "hit log \(path): \(message)" }
}

/// The hit log: JSON lines in daily files, written by one dedicated thread.
///
/// `record` takes the lock only to append to a bounded queue, so request handling never
/// waits for the disk; when the queue is full the hit is dropped and counted. The writer
/// writes whatever is queued as soon as it wakes, so a hit reaches the file within
/// `flushInterval` at the latest. Sequence numbers are given in the order hits are
/// accepted, so the lines across files are numbered without gaps. Rotation (by day and by
/// size) and `close` fsync the file; `reopen` closes and reopens the current file for an
/// outside log rotator. `close` writes every accepted hit before it returns.
// @unchecked: its mutable state is behind `lock`, which its writer thread waits on; the rest never changes.
public final class HitLog: @unchecked Sendable {
    /// Counts since the log was opened.
    public struct Statistics: Sendable, Equatable {
        /// Hits written to files.
        public var written: UInt64
        /// Hits dropped because the queue was full or a write failed.
        public var dropped: UInt64
        /// Hits accepted and not yet written.
        public var queued: Int
    }

    private struct Queued {
        var sequence: UInt64
        var hit: HitRecord
    }

    /// Where and how it writes.
    public let configuration: HitLogConfiguration
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Queued] = []
    private var nextSequence: UInt64 = 1
    private var written: UInt64 = 0
    private var dropped: UInt64 = 0
    private var reopenRequested = false
    private var closing = false
    private var finished = false
    /// Whether the writer sleeps waiting for hits; only then does `record` wake it.
    private var writerWaiting = false
    private let onDrop: @Sendable (Int) -> Void
    /// Told of each batch once it is written: the alert evaluator's windows, the dashboard's last hour.
    private let observers: [any HitObserver]
    /// How long the writer sleeps when there is nothing to write: hits reach the file
    /// within it, or within `flushInterval` when that is shorter.
    private var writerTick: Double { min(configuration.flushInterval, 0.1) }
    /// Queued hits that wake the writer before its tick.
    private static let wakeAt = 1024
    // Owned by the writer thread once it starts.
    private var file: HitFile

    /// Opens (or continues) today's file and starts the writer thread.
    /// - Parameters:
    ///   - onDrop: called with the number of hits each time some are dropped.
    ///   - observers: told of each batch of hits after it is written, on the writer thread.
    /// - Throws: `HitLogError` when the directory cannot be made or the file opened.
    public init(
        configuration: HitLogConfiguration, onDrop: @escaping @Sendable (Int) -> Void = { _ in }, observers: [any HitObserver] = []
    ) throws {
        self.configuration = configuration
        self.onDrop = onDrop
        self.observers = observers
        file = try HitFile(configuration: configuration, now: HitLog.nowMilliseconds())
        queue.reserveCapacity(min(configuration.queueCapacity, 4096))
        let thread = Thread { [self] in writeLoop() }
        thread.name = "setu-hit-log"
        thread.start()
    }

    /// Queues a hit for writing; never waits for the disk.
    /// - Returns: false when the queue was full and the hit was dropped.
    @discardableResult
    public func record(_ hit: HitRecord) -> Bool {
        condition.lock()
        guard !closing, queue.count < configuration.queueCapacity else {
            dropped += 1
            condition.unlock()
            onDrop(1)
            return false
        }
        queue.append(Queued(sequence: nextSequence, hit: hit))
        nextSequence += 1
        // The writer wakes on its own every tick; it is woken early only when hits pile up,
        // so a request seldom pays for waking a thread.
        if writerWaiting && queue.count == Self.wakeAt { condition.signal() }
        condition.unlock()
        return true
    }

    /// Closes and reopens the current file, as after `SIGUSR1`; an outside rotator may
    /// have moved it away.
    public func reopen() {
        condition.lock()
        reopenRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Writes every accepted hit, fsyncs and closes the file, and stops the writer.
    /// Hits recorded afterwards are dropped and counted.
    public func close() {
        condition.lock()
        closing = true
        condition.signal()
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// Counts so far.
    public var statistics: Statistics {
        condition.lock()
        defer { condition.unlock() }
        return Statistics(written: written, dropped: dropped, queued: queue.count)
    }

    private func writeLoop() {
        var batch: [Queued] = []
        var pending: [UInt8] = []
        pending.reserveCapacity(1 << 16)
        var line: [UInt8] = []
        line.reserveCapacity(512)
        while true {
            condition.lock()
            if queue.isEmpty && !closing && !reopenRequested {
                writerWaiting = true
                _ = condition.wait(until: Date(timeIntervalSinceNow: writerTick))
                writerWaiting = false
            }
            swap(&batch, &queue)
            let reopen = reopenRequested
            reopenRequested = false
            let stop = closing
            condition.unlock()

            // Reopen before writing: whatever was not yet written when asked goes to the new file.
            if reopen {
                do { try file.reopen() } catch { report(error) }
            }
            // Lines are gathered and written with one system call per file, not one per hit.
            var lost = 0
            var pendingLines = 0
            func writePending() {
                guard !pending.isEmpty else { return }
                do {
                    try file.write(pending)
                } catch {
                    lost += pendingLines
                    report(error)
                }
                pending.removeAll(keepingCapacity: true)
                pendingLines = 0
            }
            for entry in batch {
                line.removeAll(keepingCapacity: true)
                entry.hit.appendJSONLine(sequence: entry.sequence, to: &line)
                let now = entry.hit.timestampMilliseconds
                if file.mustRotate(now: now, pending: pending.count, adding: line.count) {
                    writePending()
                    do { try file.rotate(now: now) } catch { report(error) }
                }
                pending.append(contentsOf: line)
                pendingLines += 1
            }
            writePending()
            if !batch.isEmpty { for observer in observers { observer.observe(batch.lazy.map(\.hit)) } }
            let count = batch.count
            batch.removeAll(keepingCapacity: true)
            condition.lock()
            written += UInt64(count - lost)
            dropped += UInt64(lost)
            if stop {
                file.close()
                finished = true
                condition.broadcast()
                condition.unlock()
                if lost > 0 { onDrop(lost) }
                return
            }
            condition.unlock()
            if lost > 0 { onDrop(lost) }
        }
    }

    private func report(_ error: Error) {
        FileHandle.standardError.write(Data("setu: \(error)\n".utf8))
    }

    /// Wall-clock time in microseconds since 1970, without Foundation: what GCRA counts in.
    public static func nowMicroseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }

    /// Wall-clock time in milliseconds since 1970, without Foundation.
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// The open hit file: which day and part it is, its size, and rotation.
struct HitFile {
    let configuration: HitLogConfiguration
    private(set) var path: String
    private var descriptor: Int32
    private var size: Int
    private var name: HitFileName {
        didSet { dayNumber = Timestamp.daysSinceEpoch(of: name.day) ?? 0 }
    }
    /// The current file's day, as days since 1970.
    private var dayNumber: Int64 = 0

    init(configuration: HitLogConfiguration, now: Int64) throws {
        self.configuration = configuration
        try HitFile.makeDirectory(configuration.directory)
        let day = Timestamp.day(milliseconds: now)
        let existing = HitFileName.list(in: configuration.directory).filter { $0.day == day }
        name = existing.last ?? HitFileName(day: day, part: 0)
        dayNumber = Timestamp.daysSinceEpoch(of: name.day) ?? 0
        path = configuration.directory + "/" + name.fileName
        (descriptor, size) = try HitFile.open(path)
        if size >= configuration.maxFileBytes {
            try rotate(to: HitFileName(day: day, part: name.part + 1))
        }
        removeExpired(today: day)
    }

    /// Whether a line of a hit at `now` must go to the next file: the day changed, or the
    /// current file, with `pending` bytes still to be written to it, would pass the size limit
    /// with `bytes` more. A line longer than the limit goes alone into a file of its own.
    func mustRotate(now: Int64, pending: Int, adding bytes: Int) -> Bool {
        let (days, _) = now.quotientAndRemainderFloored(dividingBy: 86_400_000)
        let filled = size + pending
        return days > dayNumber || (filled > 0 && filled + bytes > configuration.maxFileBytes)
    }

    /// Moves to the next file: the next day's first, or the day's next part.
    mutating func rotate(now: Int64) throws {
        let day = Timestamp.day(milliseconds: now)
        if day > name.day {
            try rotate(to: HitFileName(day: day, part: 0))
            removeExpired(today: day)
        } else {
            try rotate(to: HitFileName(day: name.day, part: name.part + 1))
        }
    }

    mutating func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                systemWrite(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw HitLogError(path: path, message: "cannot write: \(String(cString: strerror(errno)))")
            }
            offset += result
        }
        size += bytes.count
    }

    mutating func reopen() throws {
        fsync(descriptor)
        systemClose(descriptor)
        (descriptor, size) = try HitFile.open(path)
    }

    mutating func close() {
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        systemClose(descriptor)
        descriptor = -1
    }

    private mutating func rotate(to next: HitFileName) throws {
        fsync(descriptor)
        systemClose(descriptor)
        name = next
        path = configuration.directory + "/" + next.fileName
        (descriptor, size) = try HitFile.open(path)
    }

    private func removeExpired(today: String) {
        guard configuration.retentionDays > 0, let todayNumber = Timestamp.daysSinceEpoch(of: today) else { return }
        for file in HitFileName.list(in: configuration.directory) {
            guard let day = Timestamp.daysSinceEpoch(of: file.day), day <= todayNumber - Int64(configuration.retentionDays) else { continue }
            unlink(configuration.directory + "/" + file.fileName)
        }
    }

    private static func open(_ path: String) throws -> (Int32, Int) {
        let descriptor = systemOpen(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw HitLogError(path: path, message: "cannot open for appending: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        fstat(descriptor, &status)
        return (descriptor, Int(status.st_size))
    }

    private static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw HitLogError(path: path, message: "cannot create the directory: \(error.localizedDescription)")
        }
    }
}

/// The name of a hit file: `hits-2026-11-29.jsonl`, then `hits-2026-11-29.1.jsonl`, … as
/// the day's files reach the size limit.
public struct HitFileName: Sendable, Comparable, Hashable {
    /// The UTC day, `YYYY-MM-DD`.
    public var day: String
    /// 0 for the day's first file.
    public var part: Int

    /// The file name within the hit directory.
    public var fileName: String { part == 0 ? "hits-\(day).jsonl" : "hits-\(day).\(part).jsonl" }

    /// Reads a file name; nil for any other file.
    public init?(fileName: String) {
        guard fileName.hasPrefix("hits-"), fileName.hasSuffix(".jsonl") else { return nil }
        let stem = fileName.dropFirst(5).dropLast(6)
        let pieces = stem.split(separator: ".", omittingEmptySubsequences: false)
        guard let first = pieces.first, Timestamp.daysSinceEpoch(of: first) != nil else { return nil }
        switch pieces.count {
        case 1: self.init(day: String(first), part: 0)
        case 2:
            guard let part = Int(pieces[1]), part > 0 else { return nil }
            self.init(day: String(first), part: part)
        default: return nil
        }
    }

    /// A day's file.
    public init(day: String, part: Int) {
        self.day = day
        self.part = part
    }

    /// Oldest first: by day, then part.
    public static func < (lhs: HitFileName, rhs: HitFileName) -> Bool {
        (lhs.day, lhs.part) < (rhs.day, rhs.part)
    }

    /// The hit files in a directory, oldest first, which is the order their lines were written.
    public static func list(in directory: String) -> [HitFileName] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap(HitFileName.init(fileName:)).sorted()
    }
}
