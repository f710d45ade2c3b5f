import Foundation

/// The files Setu keeps its state in (the replay, the entitlements, quotas, the consent
/// ledger, the reconcile status): read whole, and replaced whole or not at all, durably.
///
/// Plain POSIX calls: Foundation's `Data.write(options: .atomic)` neither syncs the file
/// nor its folder, and took several times as long for the few megabytes of a replay state.
public enum AtomicFile {
    /// Why a file could not be replaced: the file, the step, and the system's reason.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var path: String
        /// The step that failed and the system's reason: `cannot rename …: Permission denied`.
        public var reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// The file's bytes, or `nil` when it cannot be read (a missing state file is no error).
    public static func read(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        let size = Int(status.st_size)
        var complete = true
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            while count < size {
                let result = Foundation.read(descriptor, buffer.baseAddress! + count, size - count)
                if result < 0, errno == EINTR { continue }
                guard result > 0 else {
                    complete = false
                    break
                }
                count += result
            }
        }
        return complete ? bytes : nil
    }

    /// Appends `bytes` to `path` (made when missing) and syncs it: for the files Setu only
    /// adds to, whose readers ignore a last record cut short.
    public static func append(_ bytes: [UInt8], to path: String) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure(path: path, reason: "cannot open it: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { throw Failure(path: path, reason: "cannot append: \(String(cString: strerror(errno)))") }
            written += result
        }
        guard fsync(descriptor) == 0 else { throw Failure(path: path, reason: "cannot sync: \(String(cString: strerror(errno)))") }
    }

    /// Replaces `path` with `bytes`, creating its folder when missing. The bytes go to a
    /// temporary file of their own beside it (so two writers never share one), which is
    /// synced and renamed over `path`; then the folder is synced, so the rename survives a
    /// crash too. A crash at any point leaves the old file or the new one, never a part.
    public static func replace(_ path: String, with bytes: [UInt8]) throws(Failure) {
        func failure(_ doing: String) -> Failure {
            Failure(path: path, reason: "\(doing): \(String(cString: strerror(errno)))")
        }
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw Failure(path: path, reason: "cannot create \(folder): \(error.localizedDescription)")
        }
        var template = Array((path + ".XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw failure("cannot create a temporary file beside it") }
        let temporary = String(cString: template)
        var written = 0
        var ok = fchmod(descriptor, 0o644) == 0
        while ok, written < bytes.count {
            let result = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if result < 0, errno == EINTR { continue }
            ok = result > 0
            if ok { written += result }
        }
        if ok { ok = fsync(descriptor) == 0 }
        let error = ok ? nil : failure("cannot write \(temporary)")
        close(descriptor)
        if let error {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename \(temporary) over it")
            unlink(temporary)
            throw error
        }
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw failure("cannot open \(folder) to sync it") }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw failure("cannot sync \(folder)") }
    }
}
